"""aiosqlite: a whole function run in a connection's worker thread, one hop per transaction.

aiosqlite sends each statement to its worker thread separately (one round trip per statement).
Its private `Connection._execute(fn, *args)` (aiosqlite 0.17 to 0.22 at least) queues any
callable on that thread, and `Connection._conn` is the sqlite3 connection it owns: with both,
a transaction costs one thread switch. `FAST` is False when aiosqlite is missing or lacks
them; `connect` then gives a `ThreadWorker`, one thread of the library's own that runs calls
in order on a sqlite3 connection it opened, as aiosqlite's would (same results: the tests run
the SQLite store on both).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from eventsource._optional import optional

if TYPE_CHECKING:
    import aiosqlite
else:
    aiosqlite = optional("aiosqlite")

__all__ = ["FAST", "AiosqliteWorker", "ThreadWorker", "Worker", "connect", "worker_of"]

FAST: bool = (
    aiosqlite is not None
    and callable(getattr(aiosqlite.Connection, "_execute", None))
    and isinstance(getattr(aiosqlite.Connection, "_conn", None), property)
)


class Worker(Protocol):
    """A thread that owns one sqlite3 connection and runs calls on it in order."""

    raw: sqlite3.Connection

    def submit(self, fn: Callable[..., Any], *args: object) -> Awaitable[Any]:
        """`fn(*args)` in the worker's thread."""
        ...

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        ...


class AiosqliteWorker:
    """An aiosqlite connection's own worker thread (its private `_execute` and `_conn`)."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        self.raw: sqlite3.Connection = connection._conn

    def submit(self, fn: Callable[..., Any], *args: object) -> Awaitable[Any]:
        """`fn(*args)` queued on aiosqlite's thread."""
        return self.connection._execute(fn, *args)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Close through aiosqlite (which stops its thread)."""
        await self.connection.close()


class ThreadWorker:
    """The plain way: a single thread of the library's own, calls run in submission order."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventsource-sqlite")
        self.raw: sqlite3.Connection = None  # type: ignore[assignment]  # set by `connect`

    def submit(self, fn: Callable[..., Any], *args: object) -> Awaitable[Any]:
        """`fn(*args)` queued on the thread."""
        return asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    async def close(self) -> None:
        """Close the connection in its thread, then let the thread end."""
        try:
            if self.raw is not None:
                await self.submit(self.raw.close)
        finally:
            self._executor.shutdown(wait=False)


async def connect(database: str, **options: Any) -> Worker:
    """A worker owning a new sqlite3 connection (`sqlite3.connect(database, **options)`):
    aiosqlite's when `FAST`, else a `ThreadWorker`."""
    if FAST:
        return AiosqliteWorker(await aiosqlite.connect(database, **options))
    worker = ThreadWorker()
    try:
        worker.raw = await worker.submit(partial(sqlite3.connect, database, **options))
    except BaseException:
        await worker.close()
        raise
    return worker


def worker_of(connection: object) -> Worker:
    """`connection` as a worker: itself if it is one, else a caller's aiosqlite connection."""
    if isinstance(connection, AiosqliteWorker | ThreadWorker):
        return connection
    return AiosqliteWorker(connection)  # type: ignore[arg-type]
