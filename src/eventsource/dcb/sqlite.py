"""`SQLiteDCBStore`: dynamic consistency boundaries over a `SQLiteEventStore`.

SQLite has one writer at a time: the append takes the write lock first (`BEGIN IMMEDIATE`), so
the condition check and the write see and change one state no other connection can change in
between; positions (`AUTOINCREMENT`) are therefore handed out in commit order, and a token is
the last position the read could see. A read is one read transaction (a consistent snapshot
in WAL mode): the matching events and the store's last position.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from uuid import UUID, uuid4

from eventsource._sql import dcb_sqlite as sql
from eventsource._sql.sqlite import VERSION_SQL, is_memory
from eventsource.dcb.base import (
    AppendJob,
    DCBReadResult,
    DCBStore,
    SequencedEvent,
    Written,
    streams_of,
)
from eventsource.dcb.exceptions import DCBConflictError
from eventsource.dcb.query import Query
from eventsource.stores._sqlite_append import event_rows
from eventsource.stores.base import check_expected_version
from eventsource.stores.sqlite import SQLiteEventStore

__all__ = ["SQLiteDCBStore"]

_INSERT = (
    "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, tenant_id, actor_id,"
    " version, timestamp, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (event_id) DO NOTHING"
)
_Rows = list[tuple[list[list[Any]], list[frozenset[str]]]]  # per stream: rows, tags


def _items(query: Query) -> list[sql.Item]:
    return [(sorted(item.types), sorted(item.tags)) for item in query.items]


class SQLiteDCBStore(DCBStore):
    """Tagged events in `store`'s database file, on `store`'s connection (connect the store
    first)."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self.refuse_outbox(store)
        self._store = store
        self.event_store = store
        self._ready = False
        database = store.database
        # A private in-memory database is its connection's alone: one store's, this one's.
        where = f"{database}:{uuid4()}" if is_memory(database) else os.path.realpath(database)
        self.store_id = f"sqlite:{where}"

    async def _prepare(self) -> None:
        if not self._ready:
            await self._store._connected().run(_create)
            self._ready = True

    async def _read(self, query: Query) -> DCBReadResult:
        await self._prepare()
        statement, params = sql.read_sql(_items(query))
        rows, last = await self._store._connected().run(_select, statement, params)
        events = self._store._decode(rows)
        return DCBReadResult(
            [SequencedEvent(row[0], event, _tags(row[8]))
             for row, event in zip(rows, events, strict=True)],
            self.token(str(last)),
        )

    async def _append(self, job: AppendJob) -> Written:
        events, condition, mark, stream = job
        await self._prepare()
        check: tuple[str, list[object]] | None = None
        if condition is not None:
            statement, params = sql.match_sql(_items(condition.query), after=True)
            check = (statement, [*params, int(mark or 0)])
        tags = {event.event_id: event_tags for event, event_tags in events}
        streams: _Rows = []
        for (aggregate_id, aggregate_type), batch in streams_of(events).items():
            rows = event_rows(str(aggregate_id), aggregate_type, batch, self._store._registry)
            streams.append((rows, [tags[event.event_id] for event in batch]))
        expected = None if stream is None else (stream.aggregate_id, stream.expected)
        conflicts, written = await self._store._connected().run(
            _write, check, streams, expected
        )
        if conflicts:
            raise DCBConflictError(conflicts)
        self._store._signal_commit()
        return written


def _tags(joined: str | None) -> frozenset[str]:
    return frozenset(joined.split("\x00")) if joined else frozenset()


def _create(db: sqlite3.Connection) -> None:
    db.executescript(sql.DDL)


def _select(db: sqlite3.Connection, statement: str, params: list[object]) -> tuple[list[Any], int]:
    db.execute("BEGIN")  # one snapshot for the events and the last position
    try:
        rows = db.execute(statement, params).fetchall()
        last = db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    finally:
        db.execute("COMMIT")
    return rows, int(last)


def _write(
    db: sqlite3.Connection,
    check: tuple[str, list[object]] | None,
    streams: _Rows,
    expected: tuple[UUID, int] | None,
) -> tuple[list[int], Written]:
    """Check and write under the write lock: (conflicting positions, what was stored); with
    `expected`, the (one) stream must be at that version."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if check is not None:
            conflicts = [row[0] for row in db.execute(*check)]
            if conflicts:
                db.execute("ROLLBACK")
                return conflicts, []
        written: Written = []
        tag_rows: list[tuple[str, int, str]] = []
        for rows, tag_sets in streams:
            version = db.execute(VERSION_SQL, (rows[0][2], rows[0][3])).fetchone()[0] or 0
            if expected is not None:
                check_expected_version(expected[0], expected[1], version)
            for row, tags in zip(rows, tag_sets, strict=True):
                row[6] = version + 1
                cursor = db.execute(_INSERT, row)
                if cursor.rowcount != 1:  # stored before: idempotent, like append_events
                    continue
                version += 1
                position = cursor.lastrowid or 0
                written.append((position, version))
                tag_rows += [(tag, position, row[1]) for tag in tags]
        db.executemany(sql.INSERT_TAG, tag_rows)  # the batch's tags in one statement
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return [], sorted(written)
