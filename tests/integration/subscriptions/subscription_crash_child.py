"""A process running a SubscriptionManager from its checkpoint until killed (by tests).

Usage: python subscription_crash_child.py BACKEND LOCATION KIND [FILE]
  BACKEND   "postgresql" (LOCATION = "url schema") or "sqlite" (LOCATION = database file)
  KIND      "plain": a plain subscriber appending each event id to FILE (one line per
            application), checkpointed by the manager; "database": a DatabaseProjection adding 1
            to `rm_sub_applied.applications` of each event id, its checkpoint in its transaction;
            "poison": the same, failing for good on every event numbered 7 modulo 700 (so its
            pages fall back to one transaction per event).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from eventsource.events.base import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager

READ_MODEL = (
    "CREATE TABLE IF NOT EXISTS rm_sub_applied (event_id TEXT PRIMARY KEY, applications INT)"
)
_APPLY = text(
    "INSERT INTO rm_sub_applied (event_id, applications) VALUES (:id, 1) "
    "ON CONFLICT (event_id) DO UPDATE SET applications = rm_sub_applied.applications + 1"
)
PAGE = 50


class SubsCrashTick(DomainEvent):
    event_type: str = "SubsCrashTick"
    aggregate_type: str = "SubsCrashClock"
    n: int


def register() -> None:
    if default_registry.get_or_none("SubsCrashTick") is None:
        default_registry.register(SubsCrashTick)


class AppliedRows(DatabaseProjection):
    """Counts applications per event id in its read-model table."""

    @handles(SubsCrashTick)
    async def _on_tick(self, conn: Any, event: SubsCrashTick) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})


def poisoned(n: int) -> bool:
    return n % 700 == 7


class PoisonedRows(AppliedRows):
    """`AppliedRows` that fails for good on the `poisoned` events (one quick retry)."""

    MAX_RETRIES = 2
    RETRY_BACKOFF_BASE = 0

    @handles(SubsCrashTick)
    async def _on_tick(self, conn: Any, event: SubsCrashTick) -> None:
        if poisoned(event.n):
            raise ValueError(f"tick {event.n} is poison")
        await super()._on_tick(conn, event)


class AppliedLines:
    """A plain subscriber: one line per application, written before the handler returns."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [SubsCrashTick]

    async def handle(self, event: DomainEvent) -> None:
        os.write(self._fd, f"{event.event_id}\n".encode())


@asynccontextmanager
async def open_backend(
    backend: str, location: str
) -> AsyncIterator[tuple[EventStore, Any, CheckpointRepository]]:
    """The store, an SQLAlchemy session factory and a checkpoint repository on one database."""
    if backend == "postgresql":
        from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
        from eventsource.stores.postgresql import PostgreSQLEventStore

        url, schema = location.split()
        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            connect_args={"server_settings": {"search_path": schema}},
        )
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        store = PostgreSQLEventStore(sessions)
        try:
            yield store, sessions, PostgreSQLCheckpointRepository(sessions)
        finally:
            await store.close()
            await engine.dispose()
    else:
        from eventsource.repositories.sqlite import SQLiteCheckpointRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        engine = create_async_engine(f"sqlite+aiosqlite:///{location}")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            async with SQLiteEventStore(location) as sqlite_store:
                await sqlite_store.initialize()
                yield sqlite_store, sessions, SQLiteCheckpointRepository(sqlite_store)
        finally:
            await engine.dispose()


async def run(backend: str, location: str, kind: str, path: str | None) -> None:
    """Follow the store from the checkpoint forever (the test kills this process)."""
    register()
    async with open_backend(backend, location) as (store, sessions, checkpoints):
        manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
        manager.poll_interval = 0.05
        subscriber: Any = (
            AppliedLines(str(path)) if kind == "plain"
            else (PoisonedRows if kind == "poison" else AppliedRows)(sessions, checkpoints)
        )
        config = SubscriptionConfig(start_from="checkpoint", batch_size=PAGE)
        await manager.subscribe(subscriber, config)
        async with manager:
            await asyncio.Event().wait()


if __name__ == "__main__":
    backend, location, kind = sys.argv[1:4]
    asyncio.run(run(backend, location, kind, sys.argv[4] if len(sys.argv) > 4 else None))
