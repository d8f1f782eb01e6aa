"""The SQLite adapter of a transfer: each batch is one `BEGIN IMMEDIATE` transaction run
whole in the driver's thread (one hop), with its map rows and progress."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from eventsource._sql import transfer as sql
from eventsource._sql.sqlite import VERSION_SQL, SQLiteConnection, now_utc_iso, utc_iso
from eventsource.stores.sqlite import SQLiteEventStore
from eventsource.transfer._endpoint import Endpoint, Mapping, already_stored
from eventsource.transfer.rows import JobState, Outgoing, RawEvent

__all__ = ["SQLiteEndpoint"]

_RAW = (
    f"SELECT {sql.RAW_COLUMNS.format(payload='payload')} FROM events WHERE id > ?"
    " ORDER BY id LIMIT ?"
)
_INSERT = (
    "INSERT INTO events (id, event_id, event_type, aggregate_id, aggregate_type, tenant_id,"
    " actor_id, version, timestamp, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MAP = "INSERT INTO transfer_positions (job, source_position, target_position) VALUES (?, ?, ?)"


class SQLiteEndpoint(Endpoint):
    """A `SQLiteEventStore` as a transfer's source or target."""

    store: SQLiteEventStore

    async def _link(self) -> SQLiteConnection:
        return await self.store._open()

    async def prepare(self) -> None:
        await self.store.initialize()
        await (await self._link()).run(_create)

    async def job_state(self, job: str) -> JobState | None:
        rows = await (await self._link()).run(_fetch, sql.PROGRESS, (job,))
        return None if not rows else JobState(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3]))

    async def mapped_after(self, job: str, position: int) -> set[int]:
        rows = await (await self._link()).run(_fetch, sql.MAPPED_AFTER, (job, position))
        return {row[0] for row in rows}

    async def translate(self, job: str, position: int) -> int | None:
        rows = await (await self._link()).run(_fetch, sql.TRANSLATE, (job, position))
        return None if rows[0][0] is None else int(rows[0][0])

    async def read_raw(self, after: int, limit: int) -> list[RawEvent]:
        rows = await (await self._link()).read(_fetch, _RAW, (after, limit))
        return [RawEvent(*row) for row in rows]

    async def write_copy(
        self, job: str, batch: Sequence[Outgoing], mapping: Mapping, state: JobState
    ) -> None:
        await (await self._link()).run(_write_copy, job, batch, mapping, state)
        self.store._signal_commit()

    async def write_import(self, job: str, rows: Sequence[RawEvent], state: JobState) -> None:
        await (await self._link()).run(_write_import, job, rows, state)
        self.store._signal_commit()


def _create(db: sqlite3.Connection) -> None:
    for statement in sql.DDL:
        db.execute(statement)


def _fetch(db: sqlite3.Connection, statement: str, params: tuple[Any, ...]) -> list[Any]:
    return db.execute(statement, params).fetchall()


def _write_copy(
    db: sqlite3.Connection, job: str, batch: Sequence[Outgoing], mapping: Mapping, state: JobState
) -> None:
    def write() -> None:
        heads: dict[tuple[str, str], int] = {}
        stored_at = now_utc_iso()
        rows = []
        for event, aggregate_type, payload in batch:
            key = (str(event.aggregate_id), aggregate_type)
            version = heads.get(key)
            if version is None:
                version = db.execute(VERSION_SQL, key).fetchone()[0] or 0
            heads[key] = version = version + 1
            tenant = event.tenant_id
            rows.append((
                None, str(event.event_id), event.event_type, key[0], aggregate_type,
                None if tenant is None else str(tenant), event.actor_id, version,
                utc_iso(event.occurred_at), payload, stored_at,
            ))
        first = 0
        if rows:
            db.executemany(_INSERT, rows)
            # AUTOINCREMENT under the write lock: the batch's positions are consecutive.
            first = db.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows) + 1
        db.executemany(_MAP, [
            (job, source, None if index is None else first + index) for source, index in mapping
        ])
        _save(db, job, state)

    _transaction(db, write)


def _write_import(
    db: sqlite3.Connection, job: str, rows: Sequence[RawEvent], state: JobState
) -> None:
    def write() -> None:
        db.executemany(_INSERT, rows)
        _save(db, job, state)

    _transaction(db, write)


def _save(db: sqlite3.Connection, job: str, state: JobState) -> None:
    db.execute(sql.SAVE_PROGRESS, (job, state.position, state.events_read, state.events_written,
                                   int(state.finished)))


def _transaction(db: sqlite3.Connection, write: Any) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        write()
        db.execute("COMMIT")
    except BaseException as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.IntegrityError):
            raise already_stored(exc) from exc
        raise
