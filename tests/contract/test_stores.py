"""Every event-store backend runs the one contract suite.

A new backend adds one `open_store` branch and one small class below.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest

from eventsource.events.registry import EventRegistry
from eventsource.stores.interface import EventStore
from eventsource.testing.contract import EventStoreContract, StoreFactory

BACKENDS = [
    "memory",
    "sqlite-memory",
    "sqlite-file",
    "sqlite-file-hop",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]


@asynccontextmanager
async def open_store(
    backend: str, tmp_path: Path, event_registry: EventRegistry | None = None
) -> AsyncIterator[EventStore]:
    """A fresh, empty, open store of `backend`, closed (and its data dropped) afterwards."""
    if backend == "memory":
        from eventsource.stores.in_memory import InMemoryEventStore

        yield InMemoryEventStore(event_registry=event_registry)
    elif backend in ("sqlite-memory", "sqlite-file", "sqlite-file-hop"):
        from eventsource.stores.sqlite import SQLiteEventStore

        if backend == "sqlite-memory":
            store = SQLiteEventStore(":memory:", event_registry=event_registry, wal_mode=False)
        else:  # a new file each time: several stores may be open in one test
            database = tmp_path / f"events-{uuid.uuid4().hex[:8]}.db"
            store = SQLiteEventStore(
                str(database),
                event_registry=event_registry,
                inline=backend != "sqlite-file-hop",
            )
        async with store:
            await store.initialize()
            yield store
    elif backend == "postgresql":
        async with _postgresql_store(event_registry) as pg_store:
            yield pg_store
    else:
        raise ValueError(f"unknown backend {backend!r}")


@asynccontextmanager
async def _postgresql_store(event_registry: EventRegistry | None) -> AsyncIterator[EventStore]:
    """A PostgreSQLEventStore over a fresh schema (selected by search_path), dropped afterwards."""
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from conftest import require_postgres
    from eventsource.stores.postgresql import PostgreSQLEventStore

    url = require_postgres()
    schema = f"c_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=10,
            max_overflow=10,
            connect_args={"server_settings": {"search_path": schema}},
        )
        try:
            store: Any = PostgreSQLEventStore(
                async_sessionmaker(engine, expire_on_commit=False), event_registry=event_registry
            )
            if hasattr(store, "initialize"):
                await store.initialize()
            try:
                yield store
            finally:
                await store.close()
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


class _OnBackend(EventStoreContract):
    backend: ClassVar[str]

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[EventStore]:
        async with open_store(self.backend, tmp_path) as opened:
            yield opened

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return partial(open_store, self.backend, tmp_path)


class TestInMemoryEventStore(_OnBackend):
    backend = "memory"
    deserialises_events = False


class TestSQLiteMemoryEventStore(_OnBackend):
    backend = "sqlite-memory"


class TestSQLiteFileEventStore(_OnBackend):
    backend = "sqlite-file"


@pytest.mark.postgresql
class TestPostgreSQLEventStore(_OnBackend):
    backend = "postgresql"
    gap_free_positions = False  # a rolled-back transaction consumes BIGSERIAL values
