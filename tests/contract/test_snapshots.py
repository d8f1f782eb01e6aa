"""The snapshot store contracts, and repository loading over them, on every backend.

A new backend adds one `open_snapshot_store` branch and one BACKENDS entry (and, if it is a
database, one `_database` branch).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from eventsource.snapshots import SnapshotStore
from eventsource.testing.contract.snapshot import SnapshotStoreContract, SQLSnapshotStoreContract
from eventsource.testing.contract.snapshot_loading import SnapshotLoadingContract

_PG = pytest.mark.postgresql
BACKENDS = [
    "memory",
    "sqlite-memory",  # ":memory:": one connection for the store's lifetime
    "sqlite-file",
    pytest.param("postgresql", marks=_PG),  # an async_sessionmaker on a fresh schema per test
]
DATABASES = ["sqlite-file", pytest.param("postgresql", marks=_PG)]


@asynccontextmanager
async def open_snapshot_store(backend: str, tmp_path: Path) -> AsyncIterator[SnapshotStore]:
    """A fresh, empty snapshot store on `backend`, closed (and its database dropped) after."""
    if backend == "memory":
        from eventsource.snapshots import InMemorySnapshotStore

        yield InMemorySnapshotStore()
        return
    if backend == "sqlite-memory":
        from eventsource.snapshots import SQLiteSnapshotStore

        async with SQLiteSnapshotStore(":memory:") as store:
            yield store
        return
    async with _database(backend, tmp_path) as (factory, _raw), factory() as store:
        yield store


@asynccontextmanager
async def _database(
    backend: str, tmp_path: Path
) -> AsyncIterator[tuple[Callable[[], AbstractAsyncContextManager[Any]], Any]]:
    """(a factory of new store instances on one fresh database, a raw SQL runner for it)."""
    if backend == "sqlite-file":
        from eventsource.snapshots import SQLiteSnapshotStore

        path = tmp_path / f"snapshots-{uuid.uuid4().hex[:8]}.db"

        async def raw(sql: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as conn:
                return conn.execute(sql).fetchall()

        yield (lambda: SQLiteSnapshotStore(str(path))), raw
        return
    async with _postgresql() as found:
        yield found


@asynccontextmanager
async def _postgresql() -> AsyncIterator[tuple[Callable[[], Any], Any]]:
    """A fresh schema; each store instance gets its own engine on it (nothing shared)."""
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from conftest import require_postgres
    from eventsource.snapshots import PostgreSQLSnapshotStore

    url = require_postgres()
    schema = f"s_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url, server_settings={"search_path": schema})

    @asynccontextmanager
    async def factory() -> AsyncIterator[PostgreSQLSnapshotStore]:
        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            connect_args={"server_settings": {"search_path": schema}},
        )
        try:
            async with PostgreSQLSnapshotStore(async_sessionmaker(engine)) as store:
                yield store
        finally:
            await engine.dispose()

    async def raw(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await admin.fetch(sql)]

    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield factory, raw
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def _checked(request: pytest.FixtureRequest) -> str:
    """The backend name; checks the PostgreSQL server here, outside the event loop."""
    if request.param == "postgresql":
        from conftest import require_postgres

        require_postgres()
    return str(request.param)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return _checked(request)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    return _checked(request)


class TestSnapshotStores(SnapshotStoreContract):
    @pytest.fixture
    async def snapshot_store(self, backend: str, tmp_path: Path) -> AsyncIterator[SnapshotStore]:
        async with open_snapshot_store(backend, tmp_path) as store:
            yield store


class TestSnapshotLoading(SnapshotLoadingContract):
    @pytest.fixture
    async def snapshot_store(self, backend: str, tmp_path: Path) -> AsyncIterator[SnapshotStore]:
        async with open_snapshot_store(backend, tmp_path) as store:
            yield store


class TestSQLSnapshotStores(SQLSnapshotStoreContract):
    @pytest.fixture
    async def _db(self, database: str, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
        async with _database(database, tmp_path) as found:
            yield found

    @pytest.fixture
    def snapshot_store_factory(self, _db: tuple[Any, Any]) -> Any:
        return _db[0]

    @pytest.fixture
    def raw_sql(self, _db: tuple[Any, Any]) -> Any:
        return _db[1]

    @pytest.fixture
    def sql_dialect(self, database: str) -> str:
        return "sqlite" if database.startswith("sqlite") else "postgresql"
