"""The retention parts of SQLiteEventStore's stream reads (`eventsource._sql.retention`).

A store opened on a database without the retention tables (a file made from the shipped
`events` schema alone, never `initialize()`d) reads streams as before; `initialize()` and the
retention API create the tables and switch it over.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from operator import itemgetter

from eventsource._retention_view import view
from eventsource._sql.retention import MARKER, STREAM_VISIBLE, bind
from eventsource._sql.sqlite import utc_iso

__all__ = ["TOMBSTONED", "has_retention_table", "typed_stream", "visible_clause"]

_EVENT = "id, event_id, event_type, payload, version"  # what get_events needs (as the store)
_MARKER, _MARKER_NAMES = bind(MARKER, "sqlite")
_VISIBLE, _VISIBLE_NAMES = bind(STREAM_VISIBLE, "sqlite")
# One row when the stream (aggregate id, type) is tombstoned (paged reads check it first).
TOMBSTONED = (
    "SELECT 1 FROM stream_metadata WHERE aggregate_id = ? AND aggregate_type = ?"
    " AND state = 'tombstoned'"
)
_SHOWN = ("id", "type", "now", "archived")  # the tuple `_values` returns
_marker_values = itemgetter(*(_SHOWN.index(name) for name in _MARKER_NAMES))
_visible_values = itemgetter(*(_SHOWN.index(name) for name in _VISIBLE_NAMES))


def has_retention_table(db: sqlite3.Connection) -> bool:
    """Whether the database has the `stream_metadata` table (run in the driver's thread)."""
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stream_metadata'"
    return db.execute(sql).fetchone() is not None


def typed_stream(
    clauses: list[str], params: list[object], aggregate_type: str, retention: bool
) -> tuple[str, list[object]]:
    """The statement and parameters of a typed stream read under `clauses` (whose first
    parameter is the aggregate id): with `retention`, a marker row first (see
    `eventsource.stores._retention_reads`), then the events the stream's metadata shows."""
    if not retention:
        return _plain_sql(tuple(clauses)), params
    shown = _values(params[0], aggregate_type)
    return _retained_sql(tuple(clauses)), [
        *_marker_values(shown), *params, *_visible_values(shown)
    ]


def visible_clause(clauses: list[str], params: list[object], aggregate_type: str) -> None:
    """Add the condition of the events a stream's metadata shows (paged reads)."""
    clauses.append(_VISIBLE)
    params.extend(_visible_values(_values(params[0], aggregate_type)))


# Made once per set of conditions, so the driver's statement cache finds the same (long)
# string object, its hash already known.
@cache
def _plain_sql(clauses: tuple[str, ...]) -> str:
    return f"SELECT {_EVENT} FROM events WHERE {' AND '.join(clauses)} ORDER BY version"


@cache
def _retained_sql(clauses: tuple[str, ...]) -> str:
    return (
        f"{_MARKER} UNION ALL SELECT * FROM (SELECT {_EVENT} FROM events WHERE "
        f"{' AND '.join(clauses)} AND {_VISIBLE} ORDER BY version)"
    )


def _values(aggregate_id: object, aggregate_type: str) -> tuple[object, ...]:
    """The retention parameters (named by `_SHOWN`) for the calling context."""
    now, archived = view()
    return aggregate_id, aggregate_type, None if now is None else utc_iso(now), archived
