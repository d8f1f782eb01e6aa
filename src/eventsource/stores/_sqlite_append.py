"""The SQLite append: event rows built from the codec's payloads, and the one transaction that
checks the stream's version (and tenant) and inserts them.

`append_rows` runs in the driver's thread (one hop); `append_rows_now` in the event loop's
thread on a connection that never waits for a lock (see `SQLiteConnection.run_now`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsource._compat.pydantic import has_custom_serialization
from eventsource._sql.sqlite import VERSION_SQL, OpenedFile, is_busy, now_utc_iso, utc_iso
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventStoreError, OptimisticLockError
from eventsource.stores.base import check_expected_version
from eventsource.stores.codec import encode_payloads
from eventsource.tenancy import check_stream_owner

__all__ = ["Also", "AppendJob", "append_rows", "append_rows_now", "event_rows"]

_INSERT = (
    "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, tenant_id, actor_id,"
    " version, timestamp, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (event_id) DO NOTHING"
)
_VERSION_SLOT = 6  # index of `version` in an _INSERT row
# Inside a tenant scope: the stream's version and its owner (the tenant of its latest event),
# by one probe of the (aggregate_id, aggregate_type, version) index.
_HEAD_SQL = (
    "SELECT version, tenant_id FROM events WHERE aggregate_id = ? AND aggregate_type = ?"
    " ORDER BY version DESC LIMIT 1"
)



Also = Callable[[sqlite3.Connection, list[str]], None]



def event_rows(
    aggregate_id: str,
    aggregate_type: str,
    events: Sequence[DomainEvent],
    registry: EventRegistry | None,
) -> list[list[Any]]:
    """Insert parameters for each event; payloads are encoded here, before any write."""
    stored_at = now_utc_iso()
    rows: list[list[Any]] = []
    add = rows.append
    for event, payload in zip(events, encode_payloads(events, registry), strict=True):
        event_id, occurred_at = _envelope_texts(event, payload)
        add([
            event_id,
            event.event_type,
            aggregate_id,
            aggregate_type,
            None if (tenant_id := event.tenant_id) is None else str(tenant_id),
            event.actor_id,
            0,
            occurred_at,
            payload,
            stored_at,
        ])
    return rows


# The event id and time columns hold the texts the JSON dump already spells out, so they are
# cut from it instead of formatted a second time (a large share of a batch's Python work).
_ID_KEY, _ID_END = '{"event_id":"', 49  # a UUID's text is 36 characters
_AT_KEY = '"occurred_at":"'
_ENVELOPE_LEAD = ("event_id", "event_type", "event_version", "occurred_at")
_plain_dumps: dict[type[DomainEvent], bool] = {}


def _envelope_texts(event: DomainEvent, payload: str) -> tuple[str, str]:
    """`(str(event.event_id), utc_iso(event.occurred_at))`, read off the event's JSON dump
    when its class dumps them plainly and the time is UTC with microseconds (almost always:
    that is what `occurred_at` defaults to)."""
    cls = type(event)
    plain = _plain_dumps.get(cls)
    if plain is None:
        plain = _plain_dumps[cls] = _dumps_envelope_plainly(cls)
    if plain:
        at = payload.find(_AT_KEY, _ID_END) + len(_AT_KEY)
        # "YYYY-MM-DDTHH:MM:SS.ffffffZ": UTC, microseconds present (else pydantic omits them).
        if at >= len(_AT_KEY) and payload[at + 19 : at + 20] == "." and (
            payload[at + 26 : at + 28] == 'Z"'
        ):
            return payload[len(_ID_KEY) : _ID_END], payload[at : at + 26] + "+00:00"
    return str(event.event_id), utc_iso(event.occurred_at)


def _dumps_envelope_plainly(cls: type[DomainEvent]) -> bool:
    """True when the class's JSON dump starts with the event id, then two scalar fields, then
    the occurred-at time, each in pydantic's own format (no alias, no custom serializer)."""
    fields = cls.model_fields
    return (
        tuple(fields)[:4] == _ENVELOPE_LEAD
        and fields["event_id"].annotation is UUID
        and fields["occurred_at"].annotation is datetime
        and not any(
            fields[name].serialization_alias or fields[name].alias or fields[name].exclude
            for name in _ENVELOPE_LEAD
        )
        and not cls.model_config.get("alias_generator")
        and cls.model_config.get("ser_json_temporal", "iso8601") == "iso8601"
        and not has_custom_serialization(cls)
    )


class AppendJob(NamedTuple):
    """One append: the stream's rows (from `event_rows`) at an expected version."""

    aggregate_id: UUID
    rows: list[list[Any]]
    expected: int
    also: Also | None = None
    tenant: UUID | None = None
    opened: OpenedFile | None = None


def append_rows(db: sqlite3.Connection, job: AppendJob) -> tuple[int, int]:
    """The whole append as one transaction: (new version, global position).

    `also(db, event_ids)`, when given, writes more rows in the same transaction for the events
    this call stored (the outbox); if it raises, nothing is written. With a bound `tenant`, the
    stream must be that tenant's (checked in the same transaction). With `opened`, its path
    must still name the file the connection writes to (checked under the write lock).
    """
    db.execute("BEGIN IMMEDIATE")  # take the write lock now: the version read stays true
    done = _append(db, job, skip_stored=False)
    if done is None:  # some event ids are stored already: redo without them
        db.execute("BEGIN IMMEDIATE")
        done = _append(db, job, skip_stored=True)
        if done is None:  # cannot happen: the write lock was held since the ids were read
            raise EventStoreError("SQLite append found stored event ids twice")
    return done


def append_rows_now(db: sqlite3.Connection, job: AppendJob) -> tuple[int, int] | None:
    """`append_rows` for the event loop's thread, on a connection that never waits for a lock
    (`SQLiteConnection.run_now`): None, with nothing written, when SQLite answered busy at any
    step (another connection holds a lock this one would have to wait for) or some event ids
    are stored already; the caller then runs `append_rows` in the driver's thread, which waits
    up to the busy timeout."""
    try:
        db.execute("BEGIN IMMEDIATE")
        return _append(db, job, skip_stored=False)
    except sqlite3.OperationalError as exc:
        if is_busy(exc):  # `_append` rolled back: nothing was written
            return None
        raise


def _append(db: sqlite3.Connection, job: AppendJob, *, skip_stored: bool) -> tuple[int, int] | None:
    """The rest of an append, in the `BEGIN IMMEDIATE` transaction just begun: check the file,
    the version (and the tenant), insert, write `also`'s rows, commit. None (rolled back) when
    some event ids are stored already."""
    aggregate_id, rows, expected, also, tenant, opened = job
    key = (rows[0][2], rows[0][3])
    try:
        if opened is not None:
            opened.check()
        current = _current_version(db, key, aggregate_id, tenant)
        check_expected_version(aggregate_id, expected, current)
        if skip_stored:
            rows = _unstored(db, rows)
        stored, position = _insert(db, rows, current)
        if stored != len(rows):
            db.execute("ROLLBACK")
            return None
        if also is not None and stored:
            also(db, [row[0] for row in rows])
        db.execute("COMMIT")
    except sqlite3.IntegrityError as exc:
        _rollback(db)
        if "events.version" in str(exc):  # a writer that bypassed the lock took our version
            actual = db.execute(VERSION_SQL, key).fetchone()[0] or 0
            raise OptimisticLockError(aggregate_id, expected, actual) from exc
        raise
    except BaseException:
        _rollback(db)
        raise
    return current + stored, position


def _current_version(
    db: sqlite3.Connection, key: tuple[str, str], aggregate_id: UUID, tenant: UUID | None
) -> int:
    """The stream's version; inside a tenant scope also checks the stream is the tenant's."""
    if tenant is None:
        return int(db.execute(VERSION_SQL, key).fetchone()[0] or 0)
    head = db.execute(_HEAD_SQL, key).fetchone()
    if head is None:
        return 0
    if head[1] != str(tenant):
        owner = None if head[1] is None else UUID(head[1])
        check_stream_owner(aggregate_id, key[1], tenant, owner)
    return int(head[0])


def _insert(db: sqlite3.Connection, rows: list[list[Any]], current: int) -> tuple[int, int]:
    """Insert rows at versions current+1, ...: (how many were new, the last global position)."""
    # executemany, not multi-row VALUES: those take fewer instructions but longer to run.
    for version, row in enumerate(rows, current + 1):
        row[_VERSION_SLOT] = version
    if len(rows) == 1:
        cursor = db.execute(_INSERT, rows[0])
        if cursor.rowcount == 1:
            return 1, cursor.lastrowid or 0
        stored = 0
    else:
        stored = db.executemany(_INSERT, rows).rowcount if rows else 0
    last = "SELECT last_insert_rowid()" if stored else "SELECT COALESCE(MAX(id), 0) FROM events"
    return stored, db.execute(last).fetchone()[0]


def _unstored(db: sqlite3.Connection, rows: list[list[Any]]) -> list[list[Any]]:
    """The rows whose event id is neither stored nor earlier in the batch (idempotency)."""
    seen: set[str] = set()
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT event_id FROM events WHERE event_id IN ({marks})"
        seen.update(found for (found,) in db.execute(sql, chunk))
    fresh = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            fresh.append(row)
    return fresh


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")
