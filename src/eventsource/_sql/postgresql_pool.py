"""`DriverPool`: a few asyncpg connections of one engine for the event store's hot paths, where
SQLAlchemy's checkout and checkin (greenlet switches, pool events, reset) cost as much CPU as
the append itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar, cast

from eventsource._sql.postgresql import (
    DriverConnection,
    Operation,
    asyncpg,
    connection_lost,
    database_of,
    driver_error,
    map_error,
    state_in_doubt,
)
from eventsource.exceptions import EventStoreTimeoutError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DriverPool", "check_timeout", "open_detached"]

T = TypeVar("T")

logger = logging.getLogger("eventsource.stores.postgresql")


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
# a sort spilled to disk: several times slower than the index scan (the first read_all after
# filling a fresh table was the slowest).
_INDEX_PATHS_ONLY = "SET enable_seqscan = off; SET enable_bitmapscan = off"
# Reads are planned for their arguments at every execution. A plan cached by the sixth
# execution was made for the table as it was then: made while `events` was nearly empty, the
# stream-version lookup kept reading the (aggregate_type, timestamp) index, filtering every
# event of the type and sorting, while writers raced on one stream.
# Planning these short statements anew costs little next to a stale plan.
_FRESH_PLANS = "SET plan_cache_mode = force_custom_plan"
# The append statement is planned once per connection and reused (planning it costs
# more than running it). Its generic plan, made while `events` may be nearly empty, must stay
# the right index lookups as the table grows: no sequential scans (single appends slowed
# as the table grew when it anti-joined and looked up versions by them), and no
# sort, which is what reading the stream's version through another index would need.
_ONE_PLAN = "SET plan_cache_mode = force_generic_plan; SET enable_sort = off"
# Those settings disable a kind of plan node by adding 10^10 to its cost, and a plan keeps
# that cost where no other node will do: the outbox append sorts the CTE of its new rows twice
# (`ORDER BY ord`), 2 * 10^10, far above `jit_above_cost` (100,000 by default), so PostgreSQL
# JIT-compiled that append at every execution, hundreds of times its cost. No statement of
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
                        if lost or state_in_doubt(exc) or conn.is_in_transaction():
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
        cause = driver_error(exc)
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


def check_timeout(timeout: object) -> None:
    """`timeout` must be None or a finite number of seconds > 0."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be finite and > 0 seconds, or None, got {timeout!r}")
