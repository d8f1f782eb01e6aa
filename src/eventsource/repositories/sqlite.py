"""Checkpoint, dead-letter and outbox repositories in SQLite, through an aiosqlite connection.

The statements and the logic are shared with PostgreSQL (`repositories/_sql/`); this module
only runs them: UUIDs go in as TEXT, datetimes as fixed-width UTC ISO text (so text order is
time order), and each statement is one hop to the driver's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeAlias
from uuid import UUID

from eventsource._optional import optional
from eventsource._sql.sqlite import SQLiteConnection, database_file, is_memory, utc_iso
from eventsource.events.base import DomainEvent
from eventsource.exceptions import SQLiteNotAvailableError
from eventsource.migrations.upgrade import upgrade_sqlite
from eventsource.repositories._outbox import LocalRelayLock, RelayLock
from eventsource.repositories._sql import Params, Row
from eventsource.repositories._sql.checkpoint import SQLCheckpointRepository
from eventsource.repositories._sql.dlq import SQLDLQRepository
from eventsource.repositories._sql.outbox import ADD_OUTBOX_SQL, SQLOutboxRepository, outbox_params

try:
    import fcntl
except ImportError:  # not POSIX: relays on one file are kept apart within a process only
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import aiosqlite

    from eventsource.stores.sqlite import SQLiteEventStore
else:
    aiosqlite = optional("aiosqlite")

__all__ = ["SQLiteCheckpointRepository", "SQLiteDLQRepository", "SQLiteOutboxRepository"]

class LinkSource(Protocol):
    """Something that connects lazily and hands out its connection (a store, a snapshot store's
    database)."""

    async def _open(self) -> SQLiteConnection: ...


Source: TypeAlias = "aiosqlite.Connection | LinkSource"


def _value(value: object) -> object:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return utc_iso(value)
    return value


def _params(params: Params) -> dict[str, object]:
    return {key: _value(value) for key, value in params.items()}


class _SQLiteExecutor:
    """Runs the shared statements on one aiosqlite connection (or a store's), creating the
    table on first use. A write commits unless the connection was already in a transaction
    (then it joins it, and the caller commits)."""

    def __init__(self, connection: Source, schema: str) -> None:
        if aiosqlite is None:
            raise SQLiteNotAvailableError
        self._source = connection
        self._schema = schema
        self._link: SQLiteConnection | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> SQLiteConnection:
        if self._link is not None:
            return self._link
        async with self._lock:
            if self._link is None:
                source = self._source
                if isinstance(source, aiosqlite.Connection):
                    link = SQLiteConnection(source, source._conn, "<aiosqlite connection>", 0)
                else:
                    link = await source._open()  # the store connects lazily, so do we
                found = await link.run(_create, self._schema)
                link.database, link.busy_timeout = found  # for error messages
                self._link = link
        return self._link

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        return await (await self._ready()).run(_fetch, sql, _params(params))

    async def execute(self, sql: str, params: Params) -> int:
        return await (await self._ready()).run(_write, sql, _params(params))

    async def has_table(self, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
        return bool(await self.fetch(sql, {"name": name}))

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    async def execute_on(self, connection: Any, sql: str, params: Params) -> None:
        await self._ready()
        if isinstance(connection, aiosqlite.Connection):
            await connection.execute(sql, _params(params))
            return
        from sqlalchemy import text  # an SQLAlchemy AsyncConnection (sqlite+aiosqlite)

        await connection.execute(text(sql), _params(params))


def _fetch(db: sqlite3.Connection, sql: str, params: dict[str, object]) -> list[Row]:
    return db.execute(sql, params).fetchall()


def _write(db: sqlite3.Connection, sql: str, params: dict[str, object]) -> int:
    ours = not db.in_transaction
    try:
        count = db.execute(sql, params).rowcount
        if ours and db.in_transaction:  # a connection in sqlite3's implicit-transaction mode
            db.commit()
    except BaseException:
        if ours and db.in_transaction:
            db.rollback()
        raise
    return count


def _create(db: sqlite3.Connection, schema: str) -> tuple[str, int]:
    """Create or upgrade the table; the database file and busy timeout (for messages)."""
    upgrade_sqlite(db, schema)
    database = database_file(db) or ":memory:"
    return database, int(db.execute("PRAGMA busy_timeout").fetchone()[0])


class SQLiteCheckpointRepository(SQLCheckpointRepository):
    """Checkpoints in `projection_checkpoints` of an open aiosqlite connection (or a store's)."""

    def __init__(
        self, connection: aiosqlite.Connection | SQLiteEventStore, enable_tracing: bool = True
    ) -> None:
        super().__init__(_SQLiteExecutor(connection, "checkpoints"), enable_tracing)


class SQLiteDLQRepository(SQLDLQRepository):
    """Dead letters in `dead_letter_queue` of an open aiosqlite connection (or a store's)."""

    def __init__(
        self, connection: aiosqlite.Connection | SQLiteEventStore, enable_tracing: bool = True
    ) -> None:
        super().__init__(_SQLiteExecutor(connection, "dlq"), enable_tracing)


class SQLiteOutboxRepository(SQLOutboxRepository):
    """Outbox rows in `event_outbox` of an open aiosqlite connection (or a store's).

    Rows come out in rowid order, which is insertion order. `relay_lock()` is an exclusive
    `flock` on `<database>-outbox-relay.lock` (released by the kernel if the holder dies), or a
    process-local lock for an in-memory database.
    """

    def __init__(
        self, connection: aiosqlite.Connection | SQLiteEventStore, enable_tracing: bool = True
    ) -> None:
        self._executor = _SQLiteExecutor(connection, "outbox")
        super().__init__(self._executor, enable_tracing, order_column="rowid")

    def relay_lock(self) -> RelayLock:
        return _FileRelayLock(self._executor)


class _FileRelayLock:
    """Leadership among the relays of one SQLite file: an exclusive, non-blocking `flock`."""

    def __init__(self, executor: _SQLiteExecutor) -> None:
        self._executor = executor
        self._file: IO[bytes] | None = None
        self._local: RelayLock | None = None

    async def acquire(self) -> bool:
        if self._file is not None:
            return True  # a flock lasts as long as its open file
        if self._local is None:
            link = await self._executor._ready()
            database = link.database
            if is_memory(database) or fcntl is None:
                key = ("sqlite outbox", link.connection if is_memory(database) else database)
                self._local = LocalRelayLock(key)
            else:
                return self._lock_file(f"{database}-outbox-relay.lock")
        return await self._local.acquire()

    def _lock_file(self, path: str) -> bool:
        handle = open(path, "ab")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except BaseException:
            handle.close()
            raise
        self._file = handle
        return True

    async def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        if self._local is not None:
            await self._local.release()


def outbox_writer(
    aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent]
) -> Callable[[sqlite3.Connection, list[str]], None]:
    """The outbox rows of one `SQLiteEventStore` append, built before the append (as
    `SQLiteOutboxRepository.add_event` builds one) and written by the returned function in the
    append's transaction, in one `executemany`, for the event ids the append stored."""
    now = datetime.now(UTC)
    rows = {
        str(event.event_id): _params(
            outbox_params(event, aggregate_id=aggregate_id, aggregate_type=aggregate_type, now=now)
        )
        for event in events
    }

    def write(db: sqlite3.Connection, event_ids: list[str]) -> None:
        db.executemany(ADD_OUTBOX_SQL, [rows[event_id] for event_id in event_ids])

    return write
