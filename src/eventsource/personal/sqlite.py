"""`SQLiteKeyStore`: data keys in an SQLite file (its own connection, the store's file or
another). SQLite cannot tell other processes about an erasure: their key caches learn of it
when their entries expire (`PersonalData(cache_ttl=...)`, docs/personal-data.md)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource._sql import personal_keys as sql
from eventsource.exceptions import SQLiteNotAvailableError
from eventsource.personal.keys import SQLKeyStore, Transaction

if TYPE_CHECKING:
    import aiosqlite
else:
    aiosqlite = optional("aiosqlite")

__all__ = ["SQLiteKeyStore"]


class _SQLiteTransaction:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def rows(self, statement: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        async with self._db.execute(statement, params) as cursor:
            return list(await cursor.fetchall())

    async def run(self, statement: str, params: dict[str, Any]) -> None:
        await self._db.execute(statement, params)


class SQLiteKeyStore(SQLKeyStore):
    """Data keys in the SQLite database `database` (a path)."""

    dialect = "sqlite"

    def __init__(self, database: str | os.PathLike[str], *, busy_timeout: int = 5000) -> None:
        if aiosqlite is None:
            raise SQLiteNotAvailableError
        self._database = os.fspath(database)
        self._busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one transaction at a time on the connection

    @asynccontextmanager
    async def _transaction(self, write: bool = True) -> AsyncIterator[Transaction]:
        async with self._lock:
            db = self._db
            if db is None:
                db = await aiosqlite.connect(self._database, isolation_level=None)
                await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout)}")
                for statement in sql.DDL:
                    await db.execute(statement)
                self._db = db
            await db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteTransaction(db)
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def watch(self, evict: Callable[[str], None]) -> bool:
        """False: other processes' erasures reach this cache only through its time-to-live."""
        del evict
        return False

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()
