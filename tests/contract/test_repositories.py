"""Checkpoint, dead-letter and outbox repository contracts on every backend.

A new backend adds one `open_repository` branch and one BACKENDS entry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.subscriptions import CheckpointStrategy, SubscriptionConfig, SubscriptionManager
from eventsource.testing.contract.checkpoint import CheckpointRepositoryContract
from eventsource.testing.contract.dlq import DLQRepositoryContract
from eventsource.testing.contract.outbox import RelayOutboxContract

_PG = pytest.mark.postgresql
BACKENDS = [
    "memory",
    "sqlite",  # a tmp file through a plain aiosqlite connection
    "sqlite-store",  # through a SQLiteEventStore's connection
    pytest.param("postgresql", marks=_PG),  # an async_sessionmaker; fresh schema per test
    pytest.param("postgresql-engine", marks=_PG),
    pytest.param("postgresql-connection", marks=_PG),
]
_MODULES = {  # backend family: (module, class-name prefix)
    "memory": ("eventsource.repositories", "InMemory"),
    "sqlite": ("eventsource.repositories.sqlite", "SQLite"),
    "postgresql": ("eventsource.repositories.postgresql", "PostgreSQL"),
}
_KINDS = {"checkpoint": "Checkpoint", "dlq": "DLQ", "outbox": "Outbox"}


@asynccontextmanager
async def open_repository(kind: str, backend: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh, empty repository of `kind` ("checkpoint", "dlq", "outbox") on `backend`."""
    module, prefix = _MODULES[backend.partition("-")[0]]
    cls = getattr(import_module(module), f"{prefix}{_KINDS[kind]}Repository")
    async with _connection(backend, tmp_path) as conn:
        yield cls() if conn is None else cls(conn)


@asynccontextmanager
async def _connection(backend: str, tmp_path: Path) -> AsyncIterator[Any]:
    if backend == "memory":
        yield None
    elif backend == "sqlite":
        import aiosqlite

        async with aiosqlite.connect(tmp_path / f"repos-{uuid.uuid4().hex[:8]}.db") as conn:
            yield conn
    elif backend == "sqlite-store":
        from eventsource.stores.sqlite import SQLiteEventStore

        async with SQLiteEventStore(str(tmp_path / f"store-{uuid.uuid4().hex[:8]}.db")) as store:
            yield store
    else:
        async with _postgresql(backend) as conn:
            yield conn


@asynccontextmanager
async def _postgresql(backend: str) -> AsyncIterator[Any]:
    """An engine, connection or session factory on a fresh schema, dropped afterwards."""
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from conftest import require_postgres

    url = require_postgres()
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=10,
            max_overflow=15,
            connect_args={"server_settings": {"search_path": schema}},
        )
        try:
            if backend == "postgresql-engine":
                yield engine
            elif backend == "postgresql-connection":
                async with engine.connect() as conn:
                    yield conn
            else:
                yield async_sessionmaker(engine, expire_on_commit=False)
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name; checks the PostgreSQL server here, outside the event loop."""
    if request.param.startswith("postgresql"):
        from conftest import require_postgres

        require_postgres()
    return str(request.param)


class TestCheckpointRepositories(CheckpointRepositoryContract):
    @pytest.fixture
    async def checkpoint_repo(self, backend: str, tmp_path: Path) -> AsyncIterator[object]:
        async with open_repository("checkpoint", backend, tmp_path) as repo:
            yield repo


class TestDLQRepositories(DLQRepositoryContract):
    @pytest.fixture
    async def dlq_repo(self, backend: str, tmp_path: Path) -> AsyncIterator[object]:
        async with open_repository("dlq", backend, tmp_path) as repo:
            yield repo


class TestOutboxRepositories(RelayOutboxContract):
    @pytest.fixture
    async def outbox_repo(self, backend: str, tmp_path: Path) -> AsyncIterator[object]:
        async with open_repository("outbox", backend, tmp_path) as repo:
            yield repo


class _Counted(DomainEvent):
    event_type: str = "RepoCounted"
    aggregate_type: str = "RepoCounter"


class _Ignored(DomainEvent):
    event_type: str = "RepoIgnored"
    aggregate_type: str = "RepoCounter"


class _Seen:
    """A subscriber of `_Counted` only, recording how many it was handed."""

    def __init__(self) -> None:
        self.handled = 0

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [_Counted]

    async def handle(self, event: DomainEvent) -> None:
        self.handled += 1


@pytest.mark.parametrize("strategy", list(CheckpointStrategy))
async def test_subscription_checkpoint_counts_events_not_writes(
    backend: str, tmp_path: Path, strategy: CheckpointStrategy
) -> None:
    """Issue 12 item 17: `events_processed` of a subscription's checkpoint is the number of
    events handed to the subscriber, however many pages (or checkpoint writes) carried them."""
    registry = EventRegistry()
    registry.register(_Counted)
    registry.register(_Ignored)
    store = InMemoryEventStore(event_registry=registry)
    counter = uuid.uuid4()
    events: list[DomainEvent] = []
    for n in range(32):  # 25 counted events, 7 the subscriber does not take, interleaved
        kind = _Ignored if n % 4 == 3 and n < 28 else _Counted
        events.append(kind(aggregate_id=counter, aggregate_version=n + 1))
    await store.append_events(counter, "RepoCounter", events, 0)
    async with open_repository("checkpoint", backend, tmp_path) as repo:
        manager = SubscriptionManager(store, None, repo, enable_tracing=False)
        seen = _Seen()
        config = SubscriptionConfig(
            start_from="beginning", batch_size=10, checkpoint_strategy=strategy,
            checkpoint_interval_seconds=0.001,
        )
        await manager.subscribe(seen, config, name="counted")
        async with manager, asyncio.timeout(30):
            while seen.handled < 25:  # noqa: ASYNC110 - polls plain state
                await asyncio.sleep(0.01)
        data = await repo.get_checkpoint_data(projection_name="counted")
    assert data is not None
    assert (data.global_position, data.events_processed) == (32, 25)
