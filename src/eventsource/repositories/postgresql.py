"""Checkpoint, dead-letter and outbox repositories in PostgreSQL, through SQLAlchemy async.

The statements and the logic are shared with SQLite (`repositories/_sql.py`); this module only
runs them, with native UUID, TIMESTAMPTZ and JSONB values. `conn` may be an `AsyncEngine`, an
`async_sessionmaker` or an `AsyncConnection` (API.md A10). With an engine or a session factory
each call is its own transaction. With a connection, a call joins the transaction the caller
has open on it (the caller commits), or else runs in its own.

The tables (and columns added since, like the checkpoint `cursor`) are created on first use,
so a table created beforehand from the documented columns keeps working.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeAlias

from eventsource._optional import optional
from eventsource._sql.postgresql import DDL_LOCK_KEY
from eventsource.migrations import get_schema, split_statements
from eventsource.repositories._sql import (
    Params,
    Row,
    SQLCheckpointRepository,
    SQLDLQRepository,
    SQLOutboxRepository,
)

if TYPE_CHECKING:
    import sqlalchemy
    from sqlalchemy.ext import asyncio as sa_asyncio
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

    Connectable: TypeAlias = AsyncEngine | AsyncConnection | async_sessionmaker[Any]
else:
    sqlalchemy = optional("sqlalchemy")
    sa_asyncio = optional("sqlalchemy.ext.asyncio")

__all__ = [
    "PostgreSQLCheckpointRepository",
    "PostgreSQLDLQRepository",
    "PostgreSQLOutboxRepository",
]

# The table each schema file creates, and its newest column: present means up to date.
_PROBES = {
    "checkpoints": ("projection_checkpoints", "cursor"),
    "dlq": ("dead_letter_queue", "resolved_by"),
    "outbox": ("event_outbox", "last_error"),
}
_PROBE_SQL = """SELECT count(*) FROM pg_attribute
WHERE attrelid = to_regclass(CAST(:table AS TEXT)) AND attname = :column AND NOT attisdropped"""


@lru_cache(maxsize=256)
def _text(sql: str) -> Any:
    return sqlalchemy.text(sql)


class _PostgreSQLExecutor:
    """Runs the shared statements through SQLAlchemy, creating the table on first use."""

    def __init__(self, conn: Connectable, schema: str) -> None:
        if sa_asyncio is None:
            raise ImportError(
                "PostgreSQL repositories need SQLAlchemy and asyncpg: "
                "pip install 'eventsource-py[postgresql]'"
            )
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self._sessions: async_sessionmaker[Any] | None = None
        if isinstance(conn, sa_asyncio.AsyncEngine):
            self._engine = conn
        elif isinstance(conn, sa_asyncio.AsyncConnection):
            self._connection = conn
        elif isinstance(conn, sa_asyncio.async_sessionmaker):
            bind = conn.kw.get("bind")
            if isinstance(bind, sa_asyncio.AsyncEngine):  # skip sessions: one less layer
                self._engine = bind
            else:
                self._sessions = conn
        else:
            raise TypeError(
                "expected an SQLAlchemy AsyncEngine, AsyncConnection or async_sessionmaker, "
                f"got {type(conn).__name__}"
            )
        self._schema = schema
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._connection_lock = asyncio.Lock()  # one statement at a time on a shared connection

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        if self._engine is not None:
            async with self._engine.begin() as conn:
                yield conn
        elif self._connection is not None:
            async with self._connection_lock:
                conn = self._connection
                if conn.in_transaction():  # the caller's transaction: the caller commits
                    yield conn
                else:
                    async with conn.begin():
                        yield conn
        else:
            assert self._sessions is not None
            async with self._sessions() as session, session.begin():
                yield await session.connection()

    async def _ensure(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            table, column = _PROBES[self._schema]
            async with self._begin() as conn:
                probe = {"table": table, "column": column}
                if not (await conn.execute(_text(_PROBE_SQL), probe)).scalar():
                    # One schema change at a time across processes (the stores use this key).
                    await conn.execute(
                        _text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK_KEY}
                    )
                    for statement in split_statements(get_schema(self._schema, "postgresql")):
                        await conn.exec_driver_sql(statement)
            self._ready = True

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        await self._ensure()
        async with self._begin() as conn:
            return list((await conn.execute(_text(sql), dict(params))).all())

    async def execute(self, sql: str, params: Params) -> int:
        await self._ensure()
        async with self._begin() as conn:
            result = await conn.execute(_text(sql), dict(params))
            return int(result.rowcount)

    async def has_table(self, name: str) -> bool:
        rows = await self.fetch(
            "SELECT to_regclass(CAST(:name AS TEXT)) IS NOT NULL", {"name": name}
        )
        return bool(rows[0][0])

    def json_text(self, column: str, key: str) -> str:
        return f"({column} ->> '{key}')"

    async def execute_on(self, connection: Any, sql: str, params: Params) -> None:
        await self._ensure()
        await connection.execute(_text(sql), dict(params))


class PostgreSQLCheckpointRepository(SQLCheckpointRepository):
    """Checkpoints in `projection_checkpoints` (created if missing)."""

    def __init__(self, conn: Connectable, enable_tracing: bool = True) -> None:
        super().__init__(_PostgreSQLExecutor(conn, "checkpoints"), enable_tracing)


class PostgreSQLDLQRepository(SQLDLQRepository):
    """Dead letters in `dead_letter_queue` (created if missing)."""

    def __init__(self, conn: Connectable, enable_tracing: bool = True) -> None:
        super().__init__(_PostgreSQLExecutor(conn, "dlq"), enable_tracing)


class PostgreSQLOutboxRepository(SQLOutboxRepository):
    """Outbox rows in `event_outbox` (created if missing)."""

    def __init__(self, conn: Connectable, enable_tracing: bool = True) -> None:
        super().__init__(_PostgreSQLExecutor(conn, "outbox"), enable_tracing)
