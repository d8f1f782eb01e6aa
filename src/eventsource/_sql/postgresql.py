"""PostgreSQL plumbing: asyncpg connections under an SQLAlchemy engine, the DDL, error mapping.

The stores drive asyncpg directly (prepared statements cached per connection, JSONB read as
text for pydantic). `driver_connection` borrows a connection from the caller's SQLAlchemy pool
for one operation; `DriverPool` keeps a few connections for the event store's hot paths, where
SQLAlchemy's checkout and checkin (greenlet switches, pool events, reset) cost as much CPU as
the append itself. Both take their connections from the engine, so URL, credentials, connect
args such as `server_settings={"search_path": ...}` and pool `connect` events stay the caller's.
A connection is reused only with no transaction open; if its state is in doubt (cancelled
mid-query, driver error, transaction left open) it is dropped instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from eventsource._optional import optional
from eventsource.exceptions import (
    EventSourceError,
    EventStoreError,
    EventStoreTimeoutError,
    PostgreSQLNotAvailableError,
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
    "DriverPool",
    "Operation",
    "Row",
    "apply_schema",
    "asyncpg_url",
    "database_of",
    "driver_connection",
    "engine_of",
    "is_unique_violation",
    "map_error",
    "schema_is_current",
    "sqlalchemy_url",
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


def _driver_error(exc: BaseException) -> BaseException | None:
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
    if _driver_error(exc) is not None:
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
    cause = _driver_error(exc)
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
    cause = _driver_error(exc)
    if cause is None or isinstance(cause, TimeoutError):
        return False
    if isinstance(cause, ConnectionError):  # reset, refused, aborted, broken pipe
        return True
    if isinstance(cause, _SESSION_ENDED):
        return True
    return _unusable(cause) and conn is not None and conn.is_closed()


def _state_in_doubt(exc: BaseException) -> bool:
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
                if _state_in_doubt(exc) or conn.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await sa_conn.invalidate()
                raise
    except Exception as exc:
        mapped = map_error(exc, what, database_of(engine.url))
        if mapped is exc:
            raise
        raise mapped from exc


async def open_detached(engine: AsyncEngine) -> DriverConnection:
    """A new asyncpg connection made by the engine's pool, then taken out of the pool for good.

    The pool's creator makes it (URL, connect args, `connect` events all apply); detaching frees
    its slot, so the caller's pool keeps its full size, and the connection is ours to close.
    """
    fairy = await engine.raw_connection()
    conn = cast(DriverConnection, fairy.driver_connection)
    fairy.detach()
    return conn


def _close_soon(conn: DriverConnection) -> None:
    """Close a connection from synchronous code: gracefully when inside SQLAlchemy's greenlet."""
    from sqlalchemy.util import concurrency

    if conn.is_closed():
        return
    if concurrency.in_greenlet():
        with contextlib.suppress(Exception):
            concurrency.await_(conn.close(timeout=2))
            return
    conn.terminate()


# Every statement the store runs on `events` is an index lookup or an ordered, paged index
# scan, so its connections may not choose a sequential or bitmap scan where an index exists.
# Without that, a table filled faster than autovacuum analyzes it (a fresh deployment, a bulk
# import, the benchmarks) has no statistics, and the first executions of "id > $1 ORDER BY id
# LIMIT 5000" on each connection were a sequential scan rendering every payload as text, then
# a sort spilled to disk: 75 ms per page of 5,000 over 20,000 events instead of 12 ms (the
# first read_all after filling a fresh table: 82,000 rows/s fetched instead of 230,000).
_INDEX_PATHS_ONLY = "SET enable_seqscan = off; SET enable_bitmapscan = off"
# Reads are planned for their arguments at every execution. A plan cached by the sixth
# execution was made for the table as it was then: made while `events` was nearly empty, the
# stream-version lookup kept reading the (aggregate_type, timestamp) index, filtering every
# event of the type and sorting, 3 ms for 7,000 events, while writers raced on one stream.
# Planning these short statements costs tens of microseconds.
_FRESH_PLANS = "SET plan_cache_mode = force_custom_plan"
# The append statement is planned once per connection and reused (planning it costs ~450 µs,
# more than running it). Its generic plan, made while `events` may be nearly empty, must stay
# the right index lookups as the table grows: no sequential scans (W1 fell from 1,400 to 250
# appends/s over 16,000 events when it anti-joined and looked up versions by them), and no
# sort, which is what reading the stream's version through another index would need.
_ONE_PLAN = "SET plan_cache_mode = force_generic_plan; SET enable_sort = off"
# Those settings disable a kind of plan node by adding 10^10 to its cost, and a plan keeps
# that cost where no other node will do: the outbox append sorts the CTE of its new rows twice
# (`ORDER BY ord`), 2 * 10^10, far above `jit_above_cost` (100,000 by default), so PostgreSQL
# JIT-compiled that append at every execution: 380-490 ms instead of ~1 ms. No statement of
# the store runs long enough for JIT to pay off (index lookups, pages of at most 5,000 rows),
# so its connections never JIT-compile, whatever the costs.
_NO_JIT = "SET jit = off"
# How much longer than the server's `statement_timeout` the pool waits for an answer before
# it gives up on the connection (a silent network): the server's own cancellation, which
# leaves the connection usable, normally comes first.
_GRACE = 1.0


class DriverPool:
    """A few asyncpg connections of one engine, lent without SQLAlchemy's per-checkout cost.

    Connections come from `open_detached` when first needed, at most `max_size` at a time, and
    are kept while idle. `close()` closes them; so does disposing of the engine (its
    `engine_disposed` event), after which new ones come from the engine's new pool. In a forked
    child the parent's connections are forgotten, never used or closed.

    Dead connections: an idle connection the client has seen closed is never lent, and when a
    session ends under an operation, every idle connection is closed too and `run` runs the
    operation once more on a new one (see `run`); nothing is probed before use, which would
    cost a round trip per operation. With a `timeout` (seconds), the server cancels any
    statement running longer (`statement_timeout`), and the pool stops waiting `_GRACE`
    seconds later, closing the connection (a network that went silent): both raise
    `EventStoreTimeoutError` saying what was waited for.
    """

    def __init__(self, engine: AsyncEngine, max_size: int, timeout: float | None = None) -> None:
        from sqlalchemy import event

        self._engine = engine
        self._where = database_of(engine.url)
        self._max_size = max_size
        self._timeout = timeout
        self._settings = _NO_JIT
        if timeout is not None:
            self._settings += f"; SET statement_timeout = {max(1, round(timeout * 1000))}"
        self._limit = asyncio.Semaphore(max_size)
        self._idle: list[DriverConnection] = []
        self._idle_stable: list[DriverConnection] = []  # generic plans (`_ONE_PLAN`)
        self._dedicated: set[DriverConnection] = set()
        self._generation = 0  # bumped by engine disposal: older lent connections are closed
        self._pid = os.getpid()
        self._closed = False
        self._on_dispose = self._engine_disposed
        event.listen(engine.sync_engine, "engine_disposed", self._on_dispose)

    @classmethod
    def for_engine(cls, engine: AsyncEngine, timeout: float | None = None) -> DriverPool:
        """A pool as large as the engine's own (`pool_size`, 5 if it has none)."""
        size = getattr(engine.pool, "size", None)
        return cls(engine, max(1, size()) if callable(size) else 5, timeout)

    async def run(self, what: str, operation: Operation[T], *, stable_plans: bool = False) -> T:
        """`operation(conn)` on a lent connection; failures surface as the library's errors.

        If the session ends under it (`connection_lost`: a restart, a failover, an
        administrator, a network reset), whatever ended it has usually ended the idle ones
        too: they are closed, and the operation runs once more, on a new connection. So
        `operation` must be safe to run again when its first run's outcome is unknown: reads
        are, and the append checks for its own events.
        """
        for attempt in (1, 2):
            conn: DriverConnection | None = None
            try:
                async with self._lend(what, stable_plans) as conn:
                    return await operation(conn)
            except Exception as exc:
                if attempt == 1 and connection_lost(exc, conn):
                    logger.info("%s: %s lost its connection (%s); running it again on a new one",
                                self._where, what, exc)
                    continue
                error = self._error(exc, what)
                if error is exc:
                    raise
                raise error from exc
        raise AssertionError("unreachable: the second attempt returns or raises")

    @asynccontextmanager
    async def connection(
        self, what: str, *, stable_plans: bool = False, timed: bool = True
    ) -> AsyncIterator[DriverConnection]:
        """Lend a connection for several statements (not retried: see `run`); failures
        surface as the library's errors. `timed=False` lifts the pool's timeout (schema
        changes, which may rewrite a large table).

        Every connection plans index paths only (`_INDEX_PATHS_ONLY`); reads are planned
        afresh at each execution (`_FRESH_PLANS`), and `stable_plans` connections, for the
        append, reuse one generic plan per statement (`_ONE_PLAN`).
        """
        try:
            async with self._lend(what, stable_plans, timed) as conn:
                yield conn
        except Exception as exc:
            error = self._error(exc, what)
            if error is exc:
                raise
            raise error from exc

    @asynccontextmanager
    async def _lend(
        self, what: str, stable_plans: bool, timed: bool = True
    ) -> AsyncIterator[DriverConnection]:
        """A connection, kept for reuse afterwards unless its state is in doubt. Driver errors
        pass through raw, except the pool's own deadline (`EventStoreTimeoutError`)."""
        if self._pid != os.getpid():
            self._forget_inherited()
        limit = self._timeout + _GRACE if timed and self._timeout is not None else None
        waiting = f"none of the store's {self._max_size} connections became free"
        try:
            async with asyncio.timeout(limit) as deadline:
                await self._limit.acquire()
                conn: DriverConnection | None = None
                idle = self._idle_stable if stable_plans else self._idle
                try:
                    generation = self._generation
                    conn = _take_open(idle)
                    if conn is None:
                        waiting = "no new connection to the server was made"
                        conn = await self._open(stable_plans)
                    waiting = "no answer from the server (the connection was closed)"
                    try:
                        yield conn
                    except BaseException as exc:
                        lost = connection_lost(exc, conn)
                        if lost:
                            self._discard_idle()
                        if lost or _state_in_doubt(exc) or conn.is_in_transaction():
                            self._drop(conn, abort=True)
                            conn = None
                        raise
                finally:
                    if conn is not None:
                        if self._closed or generation != self._generation or conn.is_closed():
                            self._drop(conn)
                        else:
                            idle.append(conn)
                    self._limit.release()
        except TimeoutError as exc:
            if limit is None or not deadline.expired():
                raise
            raise EventStoreTimeoutError(
                f"{self._where}: {what} timed out: {waiting} within {limit:g} s (the store's "
                f"timeout of {self._timeout:g} s plus {_GRACE:g} s)"
            ) from exc

    def _error(self, exc: Exception, what: str) -> Exception:
        """The library error for a failure of `what` (`exc` itself if it is not the database's)."""
        cause = _driver_error(exc)
        if self._timeout is not None and asyncpg is not None and isinstance(
            cause, asyncpg.QueryCanceledError
        ):
            return EventStoreTimeoutError(
                f"{self._where}: {what} timed out: the server cancelled a statement that ran "
                f"longer than the store's timeout of {self._timeout:g} s ({cause}); another "
                "session may hold a lock it needs"
            )
        return map_error(exc, what, self._where)

    async def _open(self, stable_plans: bool) -> DriverConnection:
        """A new connection with the store's settings. The engine's pool may hand over one of
        its idle connections, which a restart has killed as surely as ours: each of those is
        tried at most once before a new one is made."""
        plans = _ONE_PLAN if stable_plans else _FRESH_PLANS
        settings = f"{_INDEX_PATHS_ONLY}; {plans}; {self._settings}"
        checkedin = getattr(self._engine.pool, "checkedin", None)
        stale = checkedin() if callable(checkedin) else 0
        while True:
            conn = await open_detached(self._engine)
            try:
                await conn.execute(settings)
            except BaseException as exc:
                retry = stale > 0 and connection_lost(exc, conn)
                conn.terminate()
                if retry:
                    stale -= 1
                    continue
                raise
            return conn

    def _discard_idle(self) -> None:
        """Close every idle connection: one was found dead, and they share its fate."""
        idle = self._idle + self._idle_stable
        self._idle, self._idle_stable = [], []
        for conn in idle:
            self._drop(conn, abort=True)

    async def open_dedicated(self) -> DriverConnection:
        """A connection kept by its user for good (LISTEN), closed with the pool or the engine."""
        conn = await open_detached(self._engine)
        self._dedicated.add(conn)
        return conn

    def forget_dedicated(self, conn: DriverConnection) -> None:
        self._dedicated.discard(conn)

    def _drop(self, conn: DriverConnection, *, abort: bool = False) -> None:
        if conn.is_closed():
            return
        # Never await in a `finally` that may be running a cancellation: abort the socket when
        # the connection may be mid-protocol, else close it politely in the background.
        if abort:
            conn.terminate()
            return
        try:
            task = asyncio.get_running_loop().create_task(conn.close(timeout=2))
        except RuntimeError:
            conn.terminate()
        else:
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    async def close(self) -> None:
        """Close the idle connections, and lent ones as they come back (idempotent)."""
        from sqlalchemy import event

        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                event.remove(self._engine.sync_engine, "engine_disposed", self._on_dispose)
        idle, self._idle = self._idle + self._idle_stable, []
        self._idle_stable = []
        idle.extend(self._dedicated)
        self._dedicated.clear()
        if self._pid != os.getpid():
            return
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _engine_disposed(self, _engine: object) -> None:
        self._generation += 1
        idle, self._idle = self._idle + self._idle_stable, []
        self._idle_stable = []
        idle.extend(self._dedicated)
        self._dedicated.clear()
        if self._pid == os.getpid():
            for conn in idle:
                _close_soon(conn)

    def _forget_inherited(self) -> None:
        self._pid = os.getpid()
        self._idle = []
        self._idle_stable = []
        self._dedicated = set()
        self._limit = asyncio.Semaphore(self._max_size)
        self._generation += 1


def _take_open(idle: list[DriverConnection]) -> DriverConnection | None:
    """The newest idle connection not seen closed meanwhile (by the server or the network)."""
    while idle:
        conn = idle.pop()
        if not conn.is_closed():
            return conn
    return None


# Keeps background close tasks referenced until they finish.
_BACKGROUND: set[asyncio.Task[None]] = set()


async def schema_is_current(conn: DriverConnection, names: Sequence[str]) -> bool:
    """True if the tables exist and have the columns the store needs (`events.id`, `tx_id`;
    the outbox's `seq`, which orders its rows)."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('events') "
        "AND attname IN ('id', 'tx_id') AND NOT attisdropped) = 2, "
        "EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('event_outbox') "
        "AND attname = 'seq' AND NOT attisdropped)"
    )
    assert row is not None  # a SELECT without FROM returns one row
    return bool(row[0]) and ("outbox" not in names or bool(row[1]))


async def apply_schema(conn: DriverConnection, names: Sequence[str]) -> None:
    """Create or upgrade the named shipped tables, one process at a time."""
    async with conn.transaction():
        # Not bound by the store's statement timeout: an upgrade may rewrite a large table.
        await conn.execute("SET LOCAL statement_timeout = 0")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK_KEY)
        for name in names:
            await conn.execute(get_schema(name, "postgresql"))
