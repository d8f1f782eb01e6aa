"""SQLite: connecting with the library's pragmas, one-hop work in the driver thread, the DDL,
and mapping driver errors to library errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, TypeVar, TypeVarTuple, cast

from eventsource._compat.aiosqlite import Worker, worker_of
from eventsource._compat.aiosqlite import connect as connect_worker
from eventsource._sql.common import tenant_clause
from eventsource._sql.retention import TOMBSTONE_MARK
from eventsource.exceptions import (
    DatabaseFileChangedError,
    DatabaseLockedError,
    EventStoreError,
    StoreNotConnectedError,
    StreamTombstonedError,
)
from eventsource.migrations import get_all_schemas

if TYPE_CHECKING:
    import aiosqlite

__all__ = [
    "HOP",
    "VERSION_SQL",
    "Hop",
    "OpenedFile",
    "SQLiteConnection",
    "database_file",
    "fetch",
    "fetch_with_first_type",
    "is_busy",
    "is_memory",
    "map_error",
    "now_utc_iso",
    "utc_iso",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

Row = tuple[Any, ...]

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
VERSION_SQL = "SELECT MAX(version) FROM events WHERE aggregate_id = ? AND aggregate_type = ?"
def is_memory(database: str) -> bool:
    """True for databases that live only as long as their connection."""
    return database in ("", ":memory:") or (
        database.startswith("file:") and "mode=memory" in database
    )


def utc_iso(moment: datetime) -> str:
    """ISO-8601 in UTC with microseconds: fixed width, so text order is time order."""
    if moment.tzinfo is not UTC:
        offset = moment.utcoffset()
        if offset is None:  # naive datetimes are taken as UTC, as everywhere in the library
            return utc_iso(moment.replace(tzinfo=UTC))
        if offset:
            moment = moment.astimezone(UTC)
    # `isoformat()` leaves out a zero microsecond part; `timespec=` costs half as much again.
    if moment.microsecond:
        return moment.isoformat()
    return moment.isoformat(timespec="microseconds")


_second: list[tuple[int, str]] = [(0, "")]  # the last whole second `now_utc_iso` formatted


def now_utc_iso() -> str:
    """`utc_iso(datetime.now(UTC))` at a fraction of the cost: the date and time of day are
    formatted once per second (every append stamps its rows with the time it is stored)."""
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    known, text = _second[0]
    if second != known:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[0] = (second, text)
    return f"{text}.{micro:06d}+00:00"


def is_busy(exc: sqlite3.Error) -> bool:
    """True when SQLite refused a lock another connection holds (SQLITE_BUSY / LOCKED)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES


def map_error(
    exc: sqlite3.Error | UnicodeEncodeError, database: str, busy_timeout: int
) -> EventStoreError:
    """The library error for a driver error; callers chain it (`raise ... from exc`)."""
    if isinstance(exc, UnicodeEncodeError):  # a parameter: SQLite takes text as UTF-8
        return EventStoreError(
            f"SQLite database {database!r} cannot take the text {exc.object!r:.100}: it holds "
            "a lone surrogate, which has no UTF-8 form"
        )
    if is_busy(exc):
        return DatabaseLockedError(
            f"SQLite database {database!r} is locked: another connection kept it busy for "
            f"longer than busy_timeout={busy_timeout} ms ({exc})"
        )
    if TOMBSTONE_MARK in str(exc):  # the store names the stream
        return StreamTombstonedError()
    if "no such table" in str(exc):
        return StoreNotConnectedError(
            f"SQLite database {database!r} has no event tables ({exc}): call "
            "`await store.initialize()` to create them"
        )
    return EventStoreError(f"SQLite error on database {database!r}: {exc}")


class Hop(Enum):
    """`SQLiteConnection.read_now`'s answer when the read must go to the driver's thread."""

    HOP = "hop"


HOP = Hop.HOP


class OpenedFile:
    """The database file a connection opened, so a write can first check that its path still
    names that file.

    SQLite keeps using the file it holds open after the file was deleted, moved or replaced;
    in WAL mode it never needs to open another one, so commits succeed into a file nobody can
    open again. `check` costs one `os.stat`, run once per append, inside
    its transaction.
    """

    __slots__ = ("identity", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity = _identity(path)

    def check(self) -> None:
        """Raise `DatabaseFileChangedError` if the path no longer names the opened file."""
        if _identity(self.path) != self.identity:
            raise DatabaseFileChangedError(self.path)


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class SQLiteConnection:
    """One aiosqlite connection; `run(fn, *args)` calls `fn(sqlite3_connection, *args)` in its
    worker thread as a single hop, so a whole transaction costs one thread switch.

    `run_now(fn, *args)` (a write) and `read_now` / `read` call it in the caller's thread
    instead (no hop), for the store's in-loop work (on by default), when `can_run_now`: on a
    WAL file, on a second connection of its own whose lock requests fail at once instead of
    waiting (`busy_timeout = 0`); on a private in-memory database, which no other connection
    can lock, on the same connection while no `run` is queued or under way.
    """

    __slots__ = (
        "_now", "_pending", "_private", "_raw", "_worker", "busy_timeout", "connection",
        "database", "file",
    )

    def __init__(
        self,
        connection: aiosqlite.Connection | Worker,
        raw: sqlite3.Connection,
        database: str,
        busy_timeout: int,
    ) -> None:
        self.connection = connection
        self._worker = worker_of(connection)  # runs calls in the driver's thread
        self._raw = raw
        self.database = database
        self.busy_timeout = busy_timeout
        self._pending = 0  # `run` calls whose function may not have finished yet
        self._now: sqlite3.Connection | None = None
        self._private = False
        self.file: OpenedFile | None = None  # set by `open` for a database in a file

    @classmethod
    async def open(
        cls, database: str, *, wal_mode: bool, busy_timeout: int, run_now: bool = False
    ) -> SQLiteConnection:
        """Connect in autocommit mode (transactions are explicit) and apply the pragmas;
        `run_now`: also prepare for `run_now` where it is possible."""
        try:
            connection = await connect_worker(
                database,
                isolation_level=None,
                uri=database.startswith("file:"),
                timeout=busy_timeout / 1000,
                check_same_thread=False,  # `run_now` may use it from the event loop's thread
            )
        except sqlite3.Error as exc:
            raise map_error(exc, database, busy_timeout) from exc
        try:
            opened = cls(connection, connection.raw, database, busy_timeout)
            memory = is_memory(database)
            mode = await opened.run(_configure, wal_mode and not memory, busy_timeout)
            opened.file = await opened.run(_opened_file)
            if run_now and mode == "wal":
                # Commits in WAL need no lock beyond the write lock, so an append that got it
                # never waits after that.
                opened._now = await opened.run(_connect_now, database, busy_timeout)
            opened._private = run_now and memory and "cache=shared" not in database
        except BaseException:
            await connection.close()
            raise
        return opened

    async def run(self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> T:
        """`fn(connection, *args)` in the driver's thread; sqlite3 errors become library ones."""
        # The whole of `fn` in one hop (see `eventsource._compat.aiosqlite`).
        self._pending += 1
        try:
            result = await self._worker.submit(fn, self._raw, *args)
        except asyncio.CancelledError:
            # `fn` may still be running in the driver's thread: the connection stays busy
            # until a no-op queued behind it has run.
            asyncio.get_running_loop().create_task(self._release_when_drained())
            raise
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            self._pending -= 1
            raise map_error(exc, self.database, self.busy_timeout) from exc
        except BaseException:
            self._pending -= 1
            raise
        self._pending -= 1
        return cast(T, result)

    def read_now(
        self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts
    ) -> T | Literal[Hop.HOP]:
        """`fn(connection, *args)` for a read, in this thread when `can_run_now`; `HOP` (nothing
        done) when it cannot run here or SQLite answered busy, so the caller uses `run`.

        In WAL mode a read takes no lock a writer holds, so it is busy only in rare moments
        (another connection recovering the WAL or resetting it).
        """
        if not self.can_run_now:
            return HOP
        try:
            return fn(self._raw if self._now is None else self._now, *args)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                return HOP
            raise map_error(exc, self.database, self.busy_timeout) from exc
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise map_error(exc, self.database, self.busy_timeout) from exc

    async def read(self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> T:
        """`read_now`, or `run` when that cannot run the read here."""
        done = self.read_now(fn, *args)
        if done is HOP:
            return await self.run(fn, *args)
        return done

    async def _release_when_drained(self) -> None:
        try:
            # Closed meanwhile: then nothing runs in its thread either.
            with contextlib.suppress(Exception):
                await self._worker.submit(_nothing)
        finally:
            self._pending -= 1

    @property
    def idle(self) -> bool:
        """True when no `run` is queued or under way."""
        return self._pending == 0

    @property
    def can_run_now(self) -> bool:
        return self._now is not None or (self._private and self._pending == 0)

    def run_now(self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> T:
        """`fn(connection, *args)` in this thread, without a hop; only when `can_run_now`.

        The connection never waits for a lock: `fn` gets SQLITE_BUSY at once instead.
        """
        try:
            return fn(self._raw if self._now is None else self._now, *args)
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise map_error(exc, self.database, self.busy_timeout) from exc

    async def create_tables(self) -> None:
        """Create every table the SQLite components use (idempotent, one transaction)."""
        await self.run(_create_tables, get_all_schemas("sqlite"))

    async def close(self) -> None:
        now, self._now = self._now, None
        if now is not None:
            now.close()
        await self._worker.close()


def _configure(db: sqlite3.Connection, wal: bool, busy_timeout: int) -> str:
    """Apply the pragmas; the journal mode in force afterwards."""
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout)}")
    db.execute("PRAGMA foreign_keys = ON")
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit that returned survives power loss (WAL's NORMAL may lose the last ones).
    db.execute("PRAGMA synchronous = FULL")
    return str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def database_file(db: sqlite3.Connection) -> str:
    """The main database's file as SQLite opened it (an absolute path); "" in memory."""
    return next((row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"), "")


def _opened_file(db: sqlite3.Connection) -> OpenedFile | None:
    path = database_file(db)
    return OpenedFile(path) if path else None


def _nothing() -> None:
    return None


def _connect_now(_: sqlite3.Connection, database: str, busy_timeout: int) -> sqlite3.Connection:
    """The second connection of `run_now`: same settings, but once set up (in the driver's
    thread, where waiting is fine: another connection may be mid-recovery or checkpointing),
    a lock request that would wait fails at once (`busy_timeout = 0`)."""
    db = sqlite3.connect(
        database,
        isolation_level=None,
        uri=database.startswith("file:"),
        timeout=busy_timeout / 1000,
        check_same_thread=False,
    )
    try:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # read the schema now
        db.execute("PRAGMA busy_timeout = 0")
    except BaseException:
        db.close()
        raise
    return db


def _create_tables(db: sqlite3.Connection, script: str) -> None:
    try:
        db.executescript(f"BEGIN IMMEDIATE;\n{script}\nCOMMIT;")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


# The event-table reads below run in the driver's thread, each call one hop (`run`), or in the
# loop's thread (`read_now`).


def fetch(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[Row]:
    return db.execute(sql, params).fetchall()


def fetch_with_first_type(
    db: sqlite3.Connection, sql: str, params: Sequence[object], tenant: str | None = None
) -> tuple[str | None, list[Row]]:
    """Rows of every stream of an aggregate id, and the type it was first stored under (by
    `tenant`, when given)."""
    first_sql = "SELECT aggregate_type FROM events WHERE aggregate_id = ?"
    first_params: tuple[object, ...] = (params[0],)
    if tenant is not None:
        first_sql += f" AND {tenant_clause('?')}"
        first_params += (tenant,)
    db.execute("BEGIN")  # one snapshot for both queries
    try:
        first = db.execute(f"{first_sql} ORDER BY id LIMIT 1", first_params).fetchone()
        rows = db.execute(sql, params).fetchall()
    finally:
        db.execute("COMMIT")
    return (first[0] if first else None), rows


