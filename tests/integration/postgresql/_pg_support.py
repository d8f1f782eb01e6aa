"""Events, fixtures and process workers shared by the PostgreSQL store tests."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from eventsource.events.base import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.stores.postgresql import PostgreSQLEventStore


class ItemAdded(DomainEvent):
    event_type: str = "PgItemAdded"
    aggregate_type: str = "PgCart"
    n: int
    amount: Decimal = Decimal("1.50")


class Loose(DomainEvent):
    event_type: str = "PgLoose"
    aggregate_type: str = "PgCart"
    customer_id: Any = None
    order_id: Any = None
    note: Any = None


def register() -> None:
    for cls in (ItemAdded, Loose):
        if default_registry.get_or_none(cls.model_fields["event_type"].default) is None:
            default_registry.register(cls)


def added(aggregate_id: UUID, n: int, **kw: Any) -> ItemAdded:
    return ItemAdded(aggregate_id=aggregate_id, n=n, **kw)


@pytest.fixture
async def store(pg_session_factory: Any) -> AsyncIterator[PostgreSQLEventStore]:
    register()
    opened = PostgreSQLEventStore(pg_session_factory, enable_tracing=False)
    await opened.initialize()
    yield opened
    await opened.close()


async def raw_connection(url: str, schema: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url, server_settings={"search_path": schema})


def open_store_in(url: str, schema: str) -> tuple[PostgreSQLEventStore, Any]:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1),
        pool_size=2,
        connect_args={"server_settings": {"search_path": schema}},
    )
    register()
    return PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False), engine


# -- process workers (run under the spawn start method) -----------------------------------


def race_worker(url: str, schema: str, stream: UUID, wins_wanted: int, barrier: Any,
                results: Any) -> None:
    """Append one event at a time at the version just read, until `wins_wanted` succeed."""
    asyncio.run(_race(url, schema, stream, wins_wanted, barrier, results))


async def _race(url: str, schema: str, stream: UUID, wins_wanted: int, barrier: Any,
                results: Any) -> None:
    from eventsource.exceptions import OptimisticLockError

    store, engine = open_store_in(url, schema)
    wins: list[int] = []
    losses: list[tuple[int, int]] = []
    try:
        await store.get_stream_version(stream, "PgCart")  # connect before the start line
        barrier.wait()
        while len(wins) < wins_wanted:
            version = await store.get_stream_version(stream, "PgCart")
            try:
                result = await store.append_events(stream, "PgCart", [added(stream, os.getpid())],
                                                   version)
                wins.append(result.new_version)
            except OptimisticLockError as exc:
                losses.append((exc.expected_version, exc.actual_version))
    finally:
        await engine.dispose()
        results.put((wins, losses))


def batch_worker(url: str, schema: str, stream: UUID, size: int, started: Any) -> None:
    """Append one large batch; the parent kills this process while it runs."""
    asyncio.run(_batch(url, schema, stream, size, started))


async def _batch(url: str, schema: str, stream: UUID, size: int, started: Any) -> None:
    store, _engine = open_store_in(url, schema)
    await store.get_stream_version(stream, "PgCart")
    events = [added(stream, i) for i in range(size)]
    started.set()
    await store.append_events(stream, "PgCart", events, 0)
    os.kill(os.getpid(), signal.SIGSTOP)  # finished before the kill: wait for it


def read_back_worker(url: str, schema: str, results: Any) -> None:
    """Report what a fresh process sees: (position, version, event ids of read_all)."""
    asyncio.run(_read_back(url, schema, results))


async def _read_back(url: str, schema: str, results: Any) -> None:
    store, engine = open_store_in(url, schema)
    try:
        page = await store.read_all()
        seen = [(s.global_position, s.stream_position, str(s.event_id)) for s in page.events]
        results.put((await store.get_global_position(), seen))
    finally:
        await engine.dispose()
