"""A pytest plugin with ready-made fixtures for tests of code built on eventsource.

Enable it with `pytest -p eventsource.testing.pytest_plugin`, or in a conftest.py:
`pytest_plugins = ["eventsource.testing.pytest_plugin"]`.

Fixtures: `event_store` (in memory), `sqlite_event_store` (a fresh file),
`postgresql_event_store` (a fresh schema on `EVENTSOURCE_TEST_PG_URL`, default
postgresql://postgres@127.0.0.1:5432/test, also written postgres:// or postgresql+asyncpg://;
skipped when unreachable unless CI is set, then it fails), `any_event_store` (each of the
three in turn), `event_bus`, `checkpoint_repo`, `dlq_repo`, `outbox_repo` and
`snapshot_store` (in memory).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from eventsource.bus.memory import InMemoryEventBus
from eventsource.repositories.checkpoint import InMemoryCheckpointRepository
from eventsource.repositories.dlq import InMemoryDLQRepository
from eventsource.repositories.outbox import InMemoryOutboxRepository
from eventsource.snapshots.in_memory import InMemorySnapshotStore
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.interface import EventStore

PG_URL_ENV = "EVENTSOURCE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_T = TypeVar("_T")


@pytest.fixture
def event_store() -> InMemoryEventStore:
    """A fresh in-memory event store."""
    return InMemoryEventStore(enable_tracing=False)


@pytest.fixture
async def sqlite_event_store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """A fresh SQLite event store in a temporary file."""
    from eventsource.stores.sqlite import SQLiteEventStore

    async with SQLiteEventStore(str(tmp_path / "events.db"), enable_tracing=False) as store:
        await store.initialize()
        yield store


@pytest.fixture
async def postgresql_event_store() -> AsyncIterator[EventStore]:
    """A PostgreSQL event store in a fresh schema, dropped afterwards."""
    url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    try:
        import asyncpg
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        from eventsource._sql.postgresql import asyncpg_url, sqlalchemy_url

        admin = await asyncpg.connect(asyncpg_url(url), timeout=5)
    except Exception as exc:
        message = f"PostgreSQL unavailable at {url} ({exc}); set {PG_URL_ENV}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from eventsource.stores.postgresql import PostgreSQLEventStore

    schema = f"es_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    engine = create_async_engine(
        sqlalchemy_url(url),
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        store = PostgreSQLEventStore(
            async_sessionmaker(engine, expire_on_commit=False), enable_tracing=False
        )
        await store.initialize()
        yield store
        await store.close()
    finally:
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_event_store(request: pytest.FixtureRequest) -> EventStore:
    """Each backend in turn (the test runs three times)."""
    name = {"memory": "event_store", "sqlite": "sqlite_event_store",
            "postgresql": "postgresql_event_store"}[request.param]
    store: EventStore = request.getfixturevalue(name)
    return store


def _untraced(factory: Callable[..., _T], name: str) -> Callable[[], _T]:
    """The fixture `name`: a fresh in-memory `factory` instance, tracing off."""

    def fixture() -> _T:
        return factory(enable_tracing=False)

    fixture.__name__ = fixture.__qualname__ = name
    fixture.__doc__ = f"A fresh {factory.__name__} (tracing off)."
    return pytest.fixture(name=name)(fixture)


event_bus = _untraced(InMemoryEventBus, "event_bus")
checkpoint_repo = _untraced(InMemoryCheckpointRepository, "checkpoint_repo")
dlq_repo = _untraced(InMemoryDLQRepository, "dlq_repo")
outbox_repo = _untraced(InMemoryOutboxRepository, "outbox_repo")
snapshot_store = _untraced(InMemorySnapshotStore, "snapshot_store")
