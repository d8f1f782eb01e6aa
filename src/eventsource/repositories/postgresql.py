"""Checkpoint, dead-letter and outbox repositories in PostgreSQL, through SQLAlchemy async.

The statements and the logic are shared with SQLite (`repositories/_sql/`); this module only
runs them, with native UUID, TIMESTAMPTZ and JSONB values. `conn` may be an `AsyncEngine`, an
`async_sessionmaker` or an `AsyncConnection`. With an engine or a session factory
each call is its own transaction. With a connection, a call joins the transaction the caller
has open on it (the caller commits), or else runs in its own.

The tables (and columns added since, like the checkpoint `cursor`) are created on first use,
so a table created beforehand from the documented columns keeps working.

Failures of the database or of the road to it (a bad value, an outage, a missing database)
surface as each component's library error, chained, with a message naming the database, the
statement's kind and table, and the driver's reason (`eventsource._sql.postgresql.map_error`):
`CheckpointError` for checkpoints, `EventStoreError` for dead letters and the outbox,
`SnapshotError` for snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from eventsource._optional import optional
from eventsource._sql.postgresql import DDL_LOCK_KEY, database_of, map_error
from eventsource.exceptions import CheckpointError, EventStoreError, PostgreSQLNotAvailableError
from eventsource.migrations.upgrade import postgresql_probe, postgresql_upgrade, tables
from eventsource.repositories._outbox import LocalRelayLock, RelayLock
from eventsource.repositories._sql import Params, Row
from eventsource.repositories._sql.checkpoint import SQLCheckpointRepository
from eventsource.repositories._sql.dlq import SQLDLQRepository
from eventsource.repositories._sql.outbox import SQLOutboxRepository

if TYPE_CHECKING:
    import sqlalchemy
    from sqlalchemy.engine import URL
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

T = TypeVar("T")


@lru_cache(maxsize=256)
def _text(sql: str) -> Any:
    return sqlalchemy.text(sql)


class _PostgreSQLExecutor:
    """Runs the shared statements through SQLAlchemy, creating the table on first use."""

    def __init__(
        self, conn: Connectable, schema: str, error: type[Exception] = EventStoreError
    ) -> None:
        if sa_asyncio is None:
            raise PostgreSQLNotAvailableError
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
        self._table = next(iter(tables(schema)))  # the table messages name
        self._error = error
        self._where = database_of(self._url())
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._connection_lock = asyncio.Lock()  # one statement at a time on a shared connection

    def _url(self) -> URL | None:
        if self._engine is not None:
            return self._engine.url
        if self._connection is not None:
            return self._connection.engine.url
        return None  # a session factory without a bind: known only per session

    async def mapped(self, what: str, call: Callable[[], Awaitable[T]], sql: str = "") -> T:
        """`await call()`, its database failures raised as the component's library error."""
        try:
            return await call()
        except Exception as exc:
            error = map_error(exc, what, self._where, self._error, sql or None)
            if error is exc:
                raise
            raise error from exc

    def _what(self, sql: str) -> str:
        """How a message names a statement: its kind and the component's table."""
        return f"{sql.split(None, 1)[0].upper()} on {self._table}"

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
        if not self._ready:
            await self.mapped(f"creating {self._table}", self._create)

    async def _create(self) -> None:
        async with self._ready_lock:
            if self._ready:
                return
            async with self._begin() as conn:
                if not (await conn.execute(_text(postgresql_probe([self._schema])))).scalar():
                    # One schema change at a time across processes (the stores use this key).
                    for statement in postgresql_upgrade([self._schema], DDL_LOCK_KEY):
                        await conn.exec_driver_sql(statement)
            self._ready = True

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        await self._ensure()

        async def fetch() -> list[Row]:
            async with self._begin() as conn:
                return list((await conn.execute(_text(sql), dict(params))).all())

        return await self.mapped(self._what(sql), fetch, sql)

    async def execute(self, sql: str, params: Params) -> int:
        await self._ensure()

        async def execute() -> int:
            async with self._begin() as conn:
                result = await conn.execute(_text(sql), dict(params))
                return int(result.rowcount)

        return await self.mapped(self._what(sql), execute, sql)

    async def has_table(self, name: str) -> bool:
        rows = await self.fetch(
            "SELECT to_regclass(CAST(:name AS TEXT)) IS NOT NULL", {"name": name}
        )
        return bool(rows[0][0])

    def json_text(self, column: str, key: str) -> str:
        return f"({column} ->> '{key}')"

    async def execute_on(self, connection: Any, sql: str, params: Params) -> None:
        await self._ensure()
        await self.mapped(
            self._what(sql), lambda: connection.execute(_text(sql), dict(params)), sql
        )


class PostgreSQLCheckpointRepository(SQLCheckpointRepository):
    """Checkpoints in `projection_checkpoints` (created if missing)."""

    def __init__(self, conn: Connectable, enable_tracing: bool = True) -> None:
        super().__init__(_PostgreSQLExecutor(conn, "checkpoints", CheckpointError), enable_tracing)


class PostgreSQLDLQRepository(SQLDLQRepository):
    """Dead letters in `dead_letter_queue` (created if missing)."""

    def __init__(self, conn: Connectable, enable_tracing: bool = True) -> None:
        super().__init__(_PostgreSQLExecutor(conn, "dlq"), enable_tracing)


class PostgreSQLOutboxRepository(SQLOutboxRepository):
    """Outbox rows in `event_outbox` (created if missing), in `seq` (insertion) order.

    `relay_lock()` is a session-level advisory lock on the outbox table, held on a connection
    of its own (or on the given `AsyncConnection`): PostgreSQL releases it when that session
    ends, so a relay that dies or loses its connection gives up leadership by itself.
    """

    def __init__(self, conn: Connectable, enable_tracing: bool = True) -> None:
        self._executor = _PostgreSQLExecutor(conn, "outbox")
        super().__init__(self._executor, enable_tracing, order_column="seq")

    def relay_lock(self) -> RelayLock:
        return _AdvisoryRelayLock(self._executor)


# One key per outbox table (its oid), so relays of different schemas never exclude each other.
_RELAY_KEY = "hashtextextended('eventsource.outbox_relay:' || to_regclass('event_outbox')::oid, 0)"
_TRY_RELAY_LOCK = f"SELECT pg_try_advisory_lock({_RELAY_KEY})"
_RELAY_UNLOCK = f"SELECT pg_advisory_unlock({_RELAY_KEY})"


class _AdvisoryRelayLock:
    """Leadership among the relays of one PostgreSQL outbox: `pg_try_advisory_lock` on a
    session this object keeps (in autocommit, so it never holds a transaction open)."""

    def __init__(self, executor: _PostgreSQLExecutor) -> None:
        self._executor = executor
        self._conn: AsyncConnection | None = None
        self._owned = False  # the connection is ours (made from the engine), not the caller's
        self._local: LocalRelayLock | None = None

    async def acquire(self) -> bool:
        return await self._executor.mapped("taking the outbox relay lock", self._acquire)

    async def _acquire(self) -> bool:
        if self._conn is not None:
            try:  # the lock lives as long as the session: check that the session does
                await self._run(self._conn, "SELECT 1")
            except Exception:
                await self._drop()
            else:
                return True
        executor = self._executor
        await executor._ensure()
        if executor._engine is not None:
            conn = await executor._engine.connect()
            try:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                held = bool(await self._run(conn, _TRY_RELAY_LOCK, owned=True))
            except BaseException:
                await conn.close()
                raise
            if not held:
                await conn.close()
                return False
            self._conn, self._owned = conn, True
            return True
        if executor._connection is not None:
            # Advisory locks are re-entrant within a session: relays sharing the connection
            # are told apart in this process first.
            local = LocalRelayLock(("postgresql outbox connection", executor._connection))
            if not await local.acquire():
                return False
            try:
                held = bool(await self._run(executor._connection, _TRY_RELAY_LOCK, owned=False))
            except BaseException:
                await local.release()
                raise
            if not held:
                await local.release()
                return False
            self._conn, self._owned, self._local = executor._connection, False, local
            return True
        raise TypeError(
            "a relay lock needs an AsyncEngine, an AsyncConnection or a session factory bound "
            "to an engine: PostgreSQLOutboxRepository got a session factory without one"
        )

    async def _run(self, conn: AsyncConnection, sql: str, owned: bool | None = None) -> Any:
        if owned if owned is not None else self._owned:
            return (await conn.execute(_text(sql))).scalar()
        # The caller's connection: leave a transaction of theirs open, commit one we began.
        async with self._executor._connection_lock:
            began = not conn.in_transaction()
            value = (await conn.execute(_text(sql))).scalar()
            if began and conn.in_transaction():
                await conn.commit()
            return value

    async def release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            await self._run(conn, _RELAY_UNLOCK)
        except Exception:
            await self._drop()  # a session that ends releases its locks anyway
            return
        self._conn = None
        if self._owned:
            await conn.close()
        await self._release_local()

    async def _release_local(self) -> None:
        local, self._local = self._local, None
        if local is not None:
            await local.release()

    async def _drop(self) -> None:
        await self._release_local()
        conn, self._conn = self._conn, None
        if conn is not None and self._owned:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never back to the pool: the lock may be on it
            with contextlib.suppress(Exception):
                await conn.close()
