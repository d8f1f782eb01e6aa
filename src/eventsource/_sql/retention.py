"""Retention SQL, written once for SQLite and PostgreSQL: the part of a stream read that
applies the stream's `stream_metadata` row (in the read's own query), and the statements of
the retention API and the purge job.

Templates name their parameters `{name}` and their dialect-specific pieces `<piece>`;
`bind(template, dialect)` gives the statement and its parameter names in binding order (SQLite
binds `?` in order of appearance; PostgreSQL numbers each name once, in order of first use,
unless the caller fixes numbers with `numbers`). A stream read's `{now}` is NULL for the
database's clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

__all__ = [
    "DELETE_EVENTS",
    "DELETE_OUTBOX",
    "DELETE_SNAPSHOTS",
    "LEASE",
    "MARKER",
    "METADATA",
    "RELEASE",
    "STREAMS",
    "STREAM_VISIBLE",
    "TOMBSTONE_GUARD",
    "TOMBSTONE_MARK",
    "UPSERT",
    "Dialect",
    "bind",
]

Dialect = Literal["sqlite", "postgresql"]

# The message both backends' tombstone checks raise (`migrations/sql/*/retention.sql`).
TOMBSTONE_MARK = "eventsource: stream is tombstoned"
NEVER = 2**31 - 1  # a version no stream reaches: "nothing is visible"

_PIECES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "greatest": "MAX",
        "ts": "timestamp",
        "age": "strftime('%Y-%m-%dT%H:%M:%f', COALESCE({now}, 'now'), '-' || m.max_age_seconds"
        " || ' seconds') || '000+00:00'",
        "no_age": "''",
        "archived": "{archived}",
        "marker": "NULL, NULL, m.state, NULL",
        "marker_tail": "",
        "processed": "e.id <= {guard_position}",
        "least": "MIN",
        "fence": "LIMIT -1 OFFSET 0",  # not merged into the outer query: heads once a stream
        "aged": "strftime('%Y-%m-%dT%H:%M:%f', {now}, '-' || p.max_age_seconds || ' seconds')"
        " || '000+00:00'",
    },
    "postgresql": {
        "greatest": "GREATEST",
        "ts": '"timestamp"',
        "age": "COALESCE({now}::timestamptz, now()) - make_interval(secs => m.max_age_seconds)",
        "no_age": "'-infinity'::timestamptz",
        "archived": "{archived}::boolean",
        "marker": "NULL::bigint, NULL::uuid, m.state, NULL::uuid, NULL",
        "marker_tail": ", NULL::timestamptz, NULL",
        "processed": "(e.tx_id, e.id) <= ({guard_tx}::text::xid8, {guard_position}::bigint)",
        "least": "LEAST",
        "fence": "OFFSET 0",
        "aged": "{now}::timestamptz - make_interval(secs => p.max_age_seconds)",
    },
}
_HEAD = (
    "(SELECT h.version FROM events h WHERE h.aggregate_id = m.aggregate_id"
    " AND h.aggregate_type = m.aggregate_type ORDER BY h.version DESC LIMIT 1)"
)
_META = "FROM stream_metadata m WHERE m.aggregate_id = {id} AND m.aggregate_type = {type}"
# The lowest visible version: nothing of a tombstoned stream (nor of an archived one unless
# asked), else above the truncation point and within the newest `max_count` versions.
_CUT = (
    "CASE WHEN m.state = 'tombstoned' OR (m.state = 'archived' AND NOT <archived>)"
    f" THEN {NEVER} ELSE <greatest>(m.truncate_before, COALESCE({_HEAD} - m.max_count + 1, 0))"
    " END"
)


def _expand(template: str, dialect: Dialect) -> str:
    pieces = _PIECES[dialect]
    for _ in range(2):  # pieces may hold pieces
        template = re.sub(r"<(\w+)>", lambda found: pieces.get(found[1], found[0]), template)
    return template


def bind(
    template: str, dialect: Dialect, numbers: Mapping[str, int] | None = None
) -> tuple[str, tuple[str, ...]]:
    """The statement for `dialect`, and its parameters' names in the order to bind them."""
    expanded = _expand(template, dialect)
    order: list[str] = []
    fixed = dict(numbers or {})

    def place(found: re.Match[str]) -> str:
        name = found[1]
        if dialect == "sqlite":
            order.append(name)
            return "?"
        if name not in fixed:
            fixed[name] = max(fixed.values(), default=0) + 1
            order.append(name)
        return f"${fixed[name]}"

    return re.sub(r"\{(\w+)\}", place, expanded), tuple(order)


# -- a stream read ------------------------------------------------------------------------------

# The first row of a read of a stream with a metadata row: its state (in the event-type
# column) and its head version (in the version column); no other column is set.
MARKER = f"SELECT <marker>, COALESCE({_HEAD}, 0)<marker_tail> {_META}"


# A condition on a stream's event rows: visible under the stream's metadata row, if any.
# Each subquery names only parameters, so it runs once per read; without a metadata row (the
# common case) only the first one runs.
STREAM_VISIBLE = (
    f"(NOT EXISTS (SELECT 1 {_META}) OR (version >= (SELECT {_CUT} {_META})"
    f" AND <ts> >= COALESCE((SELECT <age> {_META}), <no_age>)))"
)


# -- the retention API -------------------------------------------------------------------------

# The check that refuses appends to tombstoned streams, created by the first tombstone (so a
# database without one pays nothing on appends): SQLite checks each inserted row, PostgreSQL
# each INSERT statement's rows at once (`eventsource_refuse_tombstoned`, in the schema).
TOMBSTONE_GUARD: dict[Dialect, str] = {
    "sqlite": (
        "CREATE TRIGGER IF NOT EXISTS events_refuse_tombstoned BEFORE INSERT ON events"
        " WHEN EXISTS (SELECT 1 FROM stream_metadata m WHERE m.aggregate_id = NEW.aggregate_id"
        " AND m.aggregate_type = NEW.aggregate_type AND m.state = 'tombstoned')"
        f" BEGIN SELECT RAISE(ABORT, '{TOMBSTONE_MARK}'); END"
    ),
    "postgresql": (
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname ="
        " 'events_refuse_tombstoned' AND tgrelid = 'events'::regclass) THEN"
        " CREATE TRIGGER events_refuse_tombstoned AFTER INSERT ON events"
        " REFERENCING NEW TABLE AS fresh_events FOR EACH STATEMENT"
        " EXECUTE FUNCTION eventsource_refuse_tombstoned(); END IF; END $$"
    ),
}

METADATA = (
    "SELECT COALESCE((SELECT version FROM events WHERE aggregate_id = {id} AND aggregate_type ="
    " {type} ORDER BY version DESC LIMIT 1), 0), m.state, m.max_age_seconds, m.max_count,"
    " m.truncate_before FROM (SELECT 1 AS one) o LEFT JOIN stream_metadata m"
    " ON m.aggregate_id = {id} AND m.aggregate_type = {type}"
)
UPSERT = (
    "INSERT INTO stream_metadata (aggregate_id, aggregate_type, state, max_age_seconds,"
    " max_count, truncate_before, updated_at) VALUES ({id}, {type}, {state}, {max_age},"
    " {max_count}, {truncate_before}, {now}) ON CONFLICT (aggregate_id, aggregate_type) DO UPDATE"
    " SET state = excluded.state, max_age_seconds = excluded.max_age_seconds, max_count ="
    " excluded.max_count, truncate_before = excluded.truncate_before, updated_at ="
    " excluded.updated_at"
)

# -- the purge job ------------------------------------------------------------------------------

LEASE = (
    "INSERT INTO purge_lease (name, holder, expires_at) VALUES ({name}, {holder}, {expires})"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
    " WHERE purge_lease.holder = excluded.holder OR purge_lease.expires_at < {now}"
)
RELEASE = "DELETE FROM purge_lease WHERE name = {name} AND holder = {holder}"
# The streams the purge may have work in (archived ones are kept whole), each with the
# version below which its events go (`below`) and its head version: a tombstoned stream goes
# whole; any other keeps its newest event, so its next append continues its versions.
_PURGEABLE = (
    "SELECT m.aggregate_id, m.aggregate_type, m.max_age_seconds,"
    f" CASE WHEN m.state = 'tombstoned' THEN {NEVER} ELSE <least>(<greatest>(m.truncate_before,"
    " COALESCE(m.head - m.max_count + 1, 0)), m.head) END AS below,"
    f" CASE WHEN m.state = 'tombstoned' THEN {NEVER} ELSE m.head END AS head"
    f" FROM (SELECT m.*, COALESCE({_HEAD}, 0) AS head FROM stream_metadata m"
    " WHERE m.state <> 'archived' AND (m.state <> 'live' OR m.max_age_seconds IS NOT NULL"
    " OR m.max_count IS NOT NULL OR m.truncate_before > 0) <fence>) m"
)
# One short batch of purgeable events across streams: below their stream's `below`, or aged
# out (never the head), and either read by every guarded subscription (`<processed>`) or, as
# "overdue", unread but stored before `overdue` (older than the maximum delay).
_DELETE_EVENTS = (
    f"DELETE FROM events WHERE id IN (SELECT e.id FROM ({_PURGEABLE}) p JOIN events e"
    " ON e.aggregate_id = p.aggregate_id AND e.aggregate_type = p.aggregate_type"
    " WHERE (e.version < p.below OR (e.version < p.head AND p.max_age_seconds IS NOT NULL"
    " AND e.<ts> < <aged>)) AND e.id < {keep} AND {condition} LIMIT {batch})"
)
DELETE_EVENTS = {
    "processed": _DELETE_EVENTS.replace("{condition}", "<processed>"),
    "overdue": _DELETE_EVENTS.replace(
        "{condition}", "NOT (<processed>) AND e.created_at < {overdue}"
    ),
}
# Snapshots that can no longer be used: taken before the version just below the cut (all of
# a tombstoned stream's).
DELETE_SNAPSHOTS = (
    f"DELETE FROM snapshots WHERE id IN (SELECT n.id FROM ({_PURGEABLE}) p JOIN snapshots n"
    " ON n.aggregate_id = p.aggregate_id AND n.aggregate_type = p.aggregate_type"
    " WHERE n.version < p.below - 1 LIMIT {batch})"
)
STREAMS = f"SELECT COUNT(*) FROM ({_PURGEABLE}) p"
DELETE_OUTBOX = (
    "DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox"
    " WHERE status = 'published' LIMIT {batch})"
)
