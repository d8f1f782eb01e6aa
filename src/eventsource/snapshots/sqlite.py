"""`SQLiteSnapshotStore`: snapshots in an SQLite file (or in memory), through aiosqlite.

The statements are shared with PostgreSQL (`snapshots/_sql.py`) and run by the SQLite executor
of the repositories. The store opens one connection on first use and keeps it until `close()`:
`":memory:"` needs that (its data lives as long as the connection), and a file store saves a
connect per call. The `snapshots` table (and the `tenant_id` column, on tables made from the
documented columns) is created on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from eventsource._optional import optional
from eventsource._sql.sqlite import SQLiteConnection
from eventsource.exceptions import SQLiteNotAvailableError
from eventsource.repositories.sqlite import _SQLiteExecutor
from eventsource.snapshots._sql import SQLSnapshotStore

if TYPE_CHECKING:
    import aiosqlite
else:
    aiosqlite = optional("aiosqlite")

__all__ = ["SQLITE_AVAILABLE", "SQLiteSnapshotStore"]

SQLITE_AVAILABLE: bool = aiosqlite is not None

_BUSY_TIMEOUT_MS = 5000


class _Database:
    """The store's one connection, opened when first needed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.link: SQLiteConnection | None = None

    async def _open(self) -> SQLiteConnection:
        # The executor calls this once, under its lock.
        if self.link is None:
            # wal_mode=False leaves the file's journal mode as it is: a store sharing the file
            # with an SQLiteEventStore keeps that store's choice.
            self.link = await SQLiteConnection.open(
                self.path, wal_mode=False, busy_timeout=_BUSY_TIMEOUT_MS
            )
        return self.link

    async def close(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await link.close()


class SQLiteSnapshotStore(SQLSnapshotStore):
    """Snapshots in the `snapshots` table of an SQLite database: a file, or `":memory:"`."""

    def __init__(self, database_path: str | os.PathLike[str], enable_tracing: bool = True) -> None:
        if not SQLITE_AVAILABLE:
            raise SQLiteNotAvailableError
        self._database_path = os.fspath(database_path)
        self._database = _Database(self._database_path)
        super().__init__(_SQLiteExecutor(self._database, "snapshots"), enable_tracing)

    @property
    def database_path(self) -> str:
        return self._database_path

    async def close(self) -> None:
        """Close the connection (idempotent); `":memory:"` snapshots go with it. A later call
        connects again."""
        await self._database.close()
        self._db = _SQLiteExecutor(self._database, "snapshots")  # forgets the closed link
