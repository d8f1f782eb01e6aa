"""PostgreSQL plumbing: asyncpg connections under an SQLAlchemy engine, the DDL, error mapping.

The stores drive asyncpg directly (prepared statements cached per connection, JSONB read as
text for pydantic). `driver_connection` borrows a connection from the caller's SQLAlchemy pool
for one operation; `postgresql_pool.DriverPool` keeps a few connections for the event store's
hot paths. Both take their connections from the engine, so URL, credentials, connect args such
as `server_settings={"search_path": ...}` and pool `connect` events stay the caller's. A
connection is reused only with no transaction open; if its state is in doubt (cancelled
mid-query, driver error, transaction left open) it is dropped instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from eventsource._optional import optional
from eventsource._sql.retention import TOMBSTONE_MARK
from eventsource.exceptions import (
    EventSourceError,
    EventStoreError,
    PostgreSQLNotAvailableError,
    StreamTombstonedError,
)
from eventsource.migrations import get_schema

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

asyncpg = optional("asyncpg")
sqlalchemy_exc = optional("sqlalchemy.exc")
# What the driver and the network raise.
_DRIVER_ERRORS: tuple[type[BaseException], ...] = (OSError,) + (
    (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
    if asyncpg is not None
    else ()
)
# The session is over: the server says it ended it (terminated, crashed, shutting down), or
# the driver found the connection broken before sending anything (a server's farewell that
# arrived while the connection was idle leaves asyncpg's protocol expecting an answer that
# will never come: the next statement fails with InternalClientError, unsent).
_SESSION_ENDED: tuple[type[BaseException], ...] = (
    (
        asyncpg.PostgresConnectionError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.CannotConnectNowError,
        asyncpg.InternalClientError,
    )
    if asyncpg is not None
    else ()
)

__all__ = [
    "DDL_LOCK_KEY",
    "DriverConnection",
    "Operation",
    "Row",
    "apply_schema",
    "asyncpg",
    "asyncpg_url",
    "connection_lost",
    "database_of",
    "driver_connection",
    "driver_error",
    "engine_of",
    "is_unique_violation",
    "map_error",
    "schema_is_current",
    "sqlalchemy_url",
    "state_in_doubt",
]

T = TypeVar("T")

logger = logging.getLogger("eventsource.stores.postgresql")

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

    def is_closed(self) -> bool: ...

    async def close(self, *, timeout: float | None = None) -> None: ...

    def terminate(self) -> None: ...


# Work done on one lent connection (`DriverPool.run`).
Operation = Callable[[DriverConnection], Awaitable[T]]


def engine_of(session_factory: object) -> AsyncEngine:
    """The `AsyncEngine` an `async_sessionmaker` (or an engine itself) is bound to."""
    if sqlalchemy_exc is None or asyncpg is None:
        raise PostgreSQLNotAvailableError
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


# -- URLs ---------------------------------------------------------------------------------------

_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def _url_rest(url: str) -> str:
    """What follows the scheme of a PostgreSQL URL; `ValueError` naming the scheme (only: the
    rest may hold a password) for any other URL."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in _SCHEMES:
        raise ValueError(
            f"Not a PostgreSQL URL: the scheme is {scheme!r} (expected postgresql://, "
            "postgres:// or postgresql+asyncpg://, e.g. postgresql://user@host:5432/database)"
        )
    return rest


def asyncpg_url(url: str) -> str:
    """`url` as asyncpg and libpq take it (`postgresql://...`), from any accepted form."""
    return f"postgresql://{_url_rest(url)}"


def sqlalchemy_url(url: str) -> str:
    """`url` for `create_async_engine` (`postgresql+asyncpg://...`), from any accepted form."""
    return f"postgresql+asyncpg://{_url_rest(url)}"


# -- errors -------------------------------------------------------------------------------------


def database_of(url: URL | None) -> str:
    """How error messages name a database: `PostgreSQL database 'name' at host:port`."""
    if url is None:
        return "PostgreSQL"
    return f"PostgreSQL database {url.database!r} at {url.host or 'localhost'}:{url.port or 5432}"


def driver_error(exc: BaseException) -> BaseException | None:
    """The driver's or the network's error behind `exc`: `exc` itself, or the one SQLAlchemy
    wrapped (as `orig`, or as the cause of its adapted DBAPI error)."""
    seen: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's DBAPIError > its adapted error > asyncpg's
        if seen is None or isinstance(seen, _DRIVER_ERRORS):
            return seen
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _is_database_error(exc: BaseException) -> bool:
    """True for errors of the database or the road to it (mapped to the library's errors)."""
    if driver_error(exc) is not None:
        return True
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError)


_ARGUMENT = re.compile(r"query argument \$(\d+)")
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def _named_arguments(reason: str, sql: str) -> str:
    """Name the `:param` behind asyncpg's "query argument $n" (SQLAlchemy numbers a statement's
    distinct parameters in order of first appearance)."""
    names = list(dict.fromkeys(_NAMED.findall(sql)))

    def name(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return f"{match.group(0)} ({names[index]})" if index < len(names) else match.group(0)

    return _ARGUMENT.sub(name, reason)


def map_error(
    exc: Exception,
    what: str,
    where: str,
    kind: type[Exception] = EventStoreError,
    sql: str | None = None,
) -> Exception:
    """The library error to raise, chained, for `exc` when it is a failure of the database or
    of the road to it, else `exc` itself. The message names the database (`where`, from
    `database_of`), the operation and the driver's reason, never the statement or its values
    (SQLAlchemy's text carries both); `sql`, when given, names the parameter behind a bad value.
    Every PostgreSQL component maps its failures here."""
    if isinstance(exc, EventSourceError) or not _is_database_error(exc):  # mapped, or not ours
        return exc
    cause = driver_error(exc)
    if cause is not None and TOMBSTONE_MARK in str(cause):  # the store names the stream
        return StreamTombstonedError()
    if cause is not None:
        reason = str(cause) or type(cause).__name__
    else:  # SQLAlchemy's own error: its message, without the statement it appends
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
    if sql is not None:
        reason = _named_arguments(reason, sql)
    return kind(f"{where}: {what} failed: {reason}")


def connection_lost(exc: BaseException, conn: DriverConnection | None) -> bool:
    """True when the session ended under an operation: the server closed it (a restart, an
    administrator, a failover) or the network reset it. Nothing more runs on that session;
    a timeout or a cancellation is not a loss (the session may still be busy)."""
    cause = driver_error(exc)
    if cause is None or isinstance(cause, TimeoutError):
        return False
    if isinstance(cause, ConnectionError):  # reset, refused, aborted, broken pipe
        return True
    if isinstance(cause, _SESSION_ENDED):
        return True
    return _unusable(cause) and conn is not None and conn.is_closed()


def state_in_doubt(exc: BaseException) -> bool:
    """After these the connection may be mid-protocol: never hand it to someone else."""
    if isinstance(exc, asyncio.CancelledError | OSError | TimeoutError):
        return True
    return _unusable(exc)


def _unusable(exc: BaseException) -> bool:
    """The driver refused to go on with the connection (closed, or its protocol broken)."""
    return asyncpg is not None and isinstance(
        exc, asyncpg.InterfaceError | asyncpg.InternalClientError
    )


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
                if state_in_doubt(exc) or conn.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await sa_conn.invalidate()
                raise
    except Exception as exc:
        mapped = map_error(exc, what, database_of(engine.url))
        if mapped is exc:
            raise
        raise mapped from exc


async def schema_is_current(conn: DriverConnection, names: Sequence[str]) -> bool:
    """True if the tables exist and have the columns the store needs (`events.id`, `tx_id`;
    the outbox's `seq`, which orders its rows; retention's tables)."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('events') "
        "AND attname IN ('id', 'tx_id') AND NOT attisdropped) = 2, "
        "EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('event_outbox') "
        "AND attname = 'seq' AND NOT attisdropped), "
        "to_regclass('stream_metadata') IS NOT NULL AND to_regclass('purge_lease') IS NOT NULL"
    )
    assert row is not None  # a SELECT without FROM returns one row
    return (
        bool(row[0])
        and ("outbox" not in names or bool(row[1]))
        and ("retention" not in names or bool(row[2]))
    )


async def apply_schema(conn: DriverConnection, names: Sequence[str]) -> None:
    """Create or upgrade the named shipped tables, one process at a time."""
    async with conn.transaction():
        # Not bound by the store's statement timeout: an upgrade may rewrite a large table.
        await conn.execute("SET LOCAL statement_timeout = 0")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK_KEY)
        for name in names:
            await conn.execute(get_schema(name, "postgresql"))
