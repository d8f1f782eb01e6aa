"""`PostgreSQLKeyStore`: data keys in PostgreSQL, through an SQLAlchemy `AsyncEngine`.

`forget` and `enrol` send a NOTIFY on `eventsource_personal_data` inside their transaction;
`watch` LISTENs on a connection of its own, so every process evicts the subject from its key
cache as soon as the erasure commits (the cache's time-to-live is only the fallback).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource._sql import personal_keys as sql
from eventsource.exceptions import PostgreSQLNotAvailableError
from eventsource.personal.keys import SQLKeyStore, Transaction

if TYPE_CHECKING:
    import sqlalchemy
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
else:
    sqlalchemy = optional("sqlalchemy")

__all__ = ["PostgreSQLKeyStore"]

_NOTIFY = "SELECT pg_notify(:channel, :subject_id)"


class _PostgreSQLTransaction:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def rows(self, statement: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        return list((await self._conn.execute(sqlalchemy.text(statement), params)).all())

    async def run(self, statement: str, params: dict[str, Any]) -> None:
        await self._conn.execute(sqlalchemy.text(statement), params)


class PostgreSQLKeyStore(SQLKeyStore):
    """Data keys in the PostgreSQL database of `engine` (tables in its search path)."""

    dialect = "postgresql"

    def __init__(self, engine: AsyncEngine) -> None:
        if sqlalchemy is None:
            raise PostgreSQLNotAvailableError
        self._engine = engine
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._listener: AsyncConnection | None = None

    @asynccontextmanager
    async def _transaction(self, write: bool = True) -> AsyncIterator[Transaction]:
        del write  # PostgreSQL locks rows, not the database
        if not self._ready:
            async with self._ready_lock:
                if not self._ready:
                    async with self._engine.begin() as conn:
                        for statement in sql.DDL:
                            await conn.exec_driver_sql(statement)
                    self._ready = True
        async with self._engine.begin() as conn:
            yield _PostgreSQLTransaction(conn)

    async def _notify(self, tx: Transaction, subject_id: str) -> None:
        await tx.run(_NOTIFY, {"channel": sql.NOTIFY_CHANNEL, "subject_id": subject_id})

    async def watch(self, evict: Callable[[str], None]) -> bool:
        """LISTEN for erasures on a dedicated connection; False if that cannot be set up."""
        if self._listener is not None:
            return True
        try:
            conn = await self._engine.connect()
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None

            def heard(_conn: object, _pid: int, _channel: str, subject_id: str) -> None:
                evict(subject_id)

            await driver.add_listener(sql.NOTIFY_CHANNEL, heard)
        except Exception:  # no LISTEN (a pooler in transaction mode...): the TTL still bounds
            return False
        self._listener = conn
        return True

    async def close(self) -> None:
        """Stop listening (the engine is the caller's to dispose of)."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
