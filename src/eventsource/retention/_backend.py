"""Running the retention statements (`eventsource._sql.retention`) on a store's own database
connection: one small adapter per SQL backend, each statement its own short transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Protocol
from uuid import UUID

from eventsource._sql.retention import Dialect, bind
from eventsource._sql.sqlite import utc_iso
from eventsource.migrations.upgrade import upgrade_sqlite
from eventsource.stores.interface import EventStore
from eventsource.stores.records import position_from_cursor

__all__ = ["Backend", "backend_for"]

_LAST = 2**63 - 1


@cache
def _statement(template: str, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    return bind(template, dialect)


class Backend(Protocol):
    """What the retention API and the purge job need of a store's database."""

    dialect: Dialect

    async def execute(self, what: str, template: str, values: Mapping[str, object]) -> int:
        """Run a statement; how many rows it changed."""

    async def fetch(
        self, what: str, template: str, values: Mapping[str, object]
    ) -> list[Sequence[Any]]:
        """Run a query; its rows."""

    def uuid(self, value: UUID) -> object:
        """A UUID as the dialect binds it."""

    def time(self, value: datetime) -> object:
        """A time as the dialect binds (and compares) it."""

    def guard(self, cursor: str | None) -> tuple[int, int]:
        """A commit-order key of a reader's cursor: everything at or before it was read."""

    def guard_values(self, key: tuple[int, int]) -> dict[str, object]:
        """The `{guard_*}` parameters of a key from `guard`."""

    async def keep_below(self) -> int:
        """Positions at or above this are never deleted (so none is ever handed out again)."""

    async def has_table(self, name: str) -> bool:
        """Whether the database has the table."""


class _SQLite:
    dialect: Dialect = "sqlite"

    def __init__(self, store: Any) -> None:
        self._store = store

    async def _call(self, fn: Any, template: str, values: Mapping[str, object]) -> Any:
        sql, names = _statement(template, "sqlite")
        link = self._store._connected()
        if not self._store._retention:  # opened without initialize(): make the tables now
            await link.run(upgrade_sqlite, "retention")
            self._store._retention = True
        return await link.run(fn, sql, [values[name] for name in names])

    async def execute(self, what: str, template: str, values: Mapping[str, object]) -> int:
        del what
        return int(await self._call(_execute, template, values))

    async def fetch(
        self, what: str, template: str, values: Mapping[str, object]
    ) -> list[Sequence[Any]]:
        del what
        rows: list[Sequence[Any]] = await self._call(_fetch, template, values)
        return rows

    def uuid(self, value: UUID) -> object:
        return str(value)

    def time(self, value: datetime) -> object:
        return utc_iso(value)

    def guard(self, cursor: str | None) -> tuple[int, int]:
        return 0, position_from_cursor(cursor)

    def guard_values(self, key: tuple[int, int]) -> dict[str, object]:
        return {"guard_position": key[1]}

    async def keep_below(self) -> int:
        # AUTOINCREMENT never hands out a position again; a table made without it (by hand or
        # by an older tool) would reuse a deleted maximum, so its newest row is kept.
        found = await self.fetch("", "SELECT sql FROM sqlite_master WHERE name = 'events'", {})
        if found and "AUTOINCREMENT" in str(found[0][0]).upper():
            return _LAST
        rows = await self.fetch("", "SELECT COALESCE(MAX(id), 0) FROM events", {})
        return int(rows[0][0])

    async def has_table(self, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = {name}"
        return bool(await self.fetch("", sql, {"name": name}))


def _execute(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> int:
    return db.execute(sql, params).rowcount


def _fetch(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[Any]:
    return db.execute(sql, params).fetchall()


class _PostgreSQL:
    dialect: Dialect = "postgresql"

    def __init__(self, store: Any) -> None:
        self._store = store

    async def _call(
        self, what: str, method: str, template: str, values: Mapping[str, object]
    ) -> Any:
        sql, names = _statement(template, "postgresql")
        args = [values[name] for name in names]
        await self._store._ensure_ready()
        return await self._store._run(what, lambda conn: getattr(conn, method)(sql, *args))

    async def execute(self, what: str, template: str, values: Mapping[str, object]) -> int:
        status = str(await self._call(what, "execute", template, values))
        count = status.rsplit(" ", 1)[-1]  # "DELETE 12", "INSERT 0 1"; "DO" counts nothing
        return int(count) if count.isdigit() else 0

    async def fetch(
        self, what: str, template: str, values: Mapping[str, object]
    ) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self._call(what, "fetch", template, values)
        return rows

    def uuid(self, value: UUID) -> object:
        return value

    def time(self, value: datetime) -> object:
        return value

    def guard(self, cursor: str | None) -> tuple[int, int]:
        from eventsource.stores._postgresql_tailing import parse_cursor

        return parse_cursor(cursor)

    def guard_values(self, key: tuple[int, int]) -> dict[str, object]:
        return {"guard_tx": str(key[0]), "guard_position": key[1]}

    async def keep_below(self) -> int:
        return _LAST  # a sequence never hands out a value twice

    async def has_table(self, name: str) -> bool:
        rows = await self.fetch("", "SELECT to_regclass({name}) IS NOT NULL", {"name": name})
        return bool(rows[0][0])


def backend_for(store: EventStore) -> Backend:
    """The adapter for a bundled SQL store; TypeError naming any other store."""
    from eventsource.stores.sqlite import SQLiteEventStore

    if isinstance(store, SQLiteEventStore):
        return _SQLite(store)
    try:
        from eventsource.stores.postgresql import PostgreSQLEventStore
    except ImportError:  # pragma: no cover - without the postgresql extra
        PostgreSQLEventStore = None  # type: ignore[assignment,misc]  # noqa: N806
    if PostgreSQLEventStore is not None and isinstance(store, PostgreSQLEventStore):
        return _PostgreSQL(store)
    raise TypeError(
        f"retention needs a SQLiteEventStore or a PostgreSQLEventStore, got "
        f"{type(store).__name__}"
    )
