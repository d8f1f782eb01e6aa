"""PostgreSQL plumbing: the asyncpg connection under an SQLAlchemy engine, the DDL, error mapping.

The stores drive asyncpg directly (prepared statements cached per connection, JSONB read as
text for pydantic) but borrow connections from the caller's SQLAlchemy pool, so pool size,
`search_path` and credentials stay the caller's. A connection goes back to the pool with no
transaction open; if its state is in doubt (cancelled mid-query, driver error, transaction left
open) it is invalidated instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

from eventsource._optional import optional
from eventsource.exceptions import EventStoreError
from eventsource.migrations import get_schema

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

asyncpg = optional("asyncpg")
sqlalchemy_exc = optional("sqlalchemy.exc")

__all__ = [
    "DDL_LOCK_KEY",
    "DriverConnection",
    "Row",
    "apply_schema",
    "driver_connection",
    "engine_of",
    "is_unique_violation",
    "schema_is_current",
]

# One key for every schema change made by the library, so concurrent first uses (processes
# included) never race on CREATE TABLE; the value is arbitrary but fixed.
DDL_LOCK_KEY = 0x6576_736F_7263_6501


class Row(Protocol):
    """An asyncpg `Record`: indexable by position or name, iterable."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class DriverConnection(Protocol):
    """The part of `asyncpg.Connection` the stores use."""

    async def fetch(self, query: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, query: str, *args: object) -> Row | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...

    async def execute(self, query: str, *args: object) -> str: ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Any]: ...

    def is_in_transaction(self) -> bool: ...


def engine_of(session_factory: object) -> AsyncEngine:
    """The `AsyncEngine` an `async_sessionmaker` (or an engine itself) is bound to."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    if isinstance(session_factory, AsyncEngine):
        return session_factory
    bind = getattr(session_factory, "kw", {}).get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError(
            "PostgreSQLEventStore needs an async_sessionmaker bound to an AsyncEngine "
            "(async_sessionmaker(create_async_engine('postgresql+asyncpg://...'))), got "
            f"{type(session_factory).__name__} bound to {type(bind).__name__}"
        )
    if bind.dialect.driver != "asyncpg":
        raise TypeError(f"PostgreSQLEventStore needs the asyncpg driver, not {bind.dialect.driver}")
    return bind


def _is_database_error(exc: BaseException) -> bool:
    """True for errors of the database or the road to it (mapped to EventStoreError)."""
    kinds: tuple[type[BaseException], ...] = (OSError, TimeoutError)
    if asyncpg is not None:
        kinds += (asyncpg.PostgresError, asyncpg.InterfaceError)
    if sqlalchemy_exc is not None:
        kinds += (sqlalchemy_exc.SQLAlchemyError,)
    return isinstance(exc, kinds)


def _state_in_doubt(exc: BaseException) -> bool:
    """After these the connection may be mid-protocol: never hand it to someone else."""
    if isinstance(exc, asyncio.CancelledError | OSError | TimeoutError):
        return True
    return asyncpg is not None and isinstance(exc, asyncpg.InterfaceError)


def is_unique_violation(exc: BaseException) -> bool:
    return asyncpg is not None and isinstance(exc, asyncpg.UniqueViolationError)


@asynccontextmanager
async def driver_connection(engine: AsyncEngine, what: str) -> AsyncIterator[DriverConnection]:
    """A pooled asyncpg connection; database failures surface as `EventStoreError` (chained)."""
    try:
        async with engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            conn = cast(DriverConnection, raw.driver_connection)
            try:
                yield conn
            except BaseException as exc:
                if _state_in_doubt(exc) or conn.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await sa_conn.invalidate()
                raise
    except Exception as exc:
        if _is_database_error(exc):
            raise EventStoreError(f"PostgreSQL: {what} failed: {exc}") from exc
        raise


async def schema_is_current(conn: DriverConnection, names: Sequence[str]) -> bool:
    """True if the tables exist and `events` has the columns the store needs."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('events') "
        "AND attname IN ('id', 'tx_id') AND NOT attisdropped) = 2, "
        "to_regclass('event_outbox') IS NOT NULL"
    )
    assert row is not None  # a SELECT without FROM returns one row
    return bool(row[0]) and ("outbox" not in names or bool(row[1]))


async def apply_schema(conn: DriverConnection, names: Sequence[str]) -> None:
    """Create or upgrade the named shipped tables, one process at a time."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK_KEY)
        for name in names:
            await conn.execute(get_schema(name, "postgresql"))
