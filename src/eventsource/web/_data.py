"""What the pages and `/api/` show, read once for both: JSON-ready dicts.

Every list is keyset-paged along an index (the command line's queries in `cli/_queries.py`,
reused), and nothing counts a whole table: the dashboard's counts stop at a cap and say so.
Each function reads through a `Backend` opened by the app (`_state.py`), inside the tenant
scope of the request.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from eventsource.cli._backend import Backend
from eventsource.cli._errors import CliUsageError, NotFoundError
from eventsource.cli._events import event_record
from eventsource.cli._evolution import current_shape
from eventsource.cli._output import plain
from eventsource.cli._queries import (
    _where,
    id_range,
    list_streams,
    stream_state_counts,
    stream_states,
)
from eventsource.cli.dlq import _STATUSES, _detail, _summary
from eventsource.cli.streams import parse_stream_id
from eventsource.cli.subscriptions import progress
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventSourceError
from eventsource.retention import reading
from eventsource.stores.interface import ReadOptions
from eventsource.tenancy import bound_tenant
from eventsource.web._cursor import decode_position, decode_stream_key, encode_cursor

__all__ = [
    "COUNT_CAP",
    "STREAM_COUNT_CAP",
    "Tables",
    "dashboard",
    "dlq_entry",
    "dlq_page",
    "event_detail",
    "log_page",
    "stream_detail",
    "streams_page",
    "subscriptions",
]

# The dashboard counts events and streams up to these many, then says "+": a count costs an
# index walk as long as the count, so it is kept short (the head position is always shown).
COUNT_CAP = 10_000
STREAM_COUNT_CAP = 1_000
Tables = frozenset[str]  # the optional tables present: checkpoints, dlq, outbox, snapshots,
# retention (stream_metadata)

_BOUNDED_EVENTS = "SELECT COUNT(*) FROM (SELECT 1 FROM events{where} LIMIT :cap) t"
_BOUNDED_STREAMS = """SELECT COUNT(*) FROM (SELECT aggregate_id, aggregate_type FROM events{where}
    GROUP BY aggregate_id, aggregate_type ORDER BY aggregate_id, aggregate_type LIMIT :cap) t"""
_LOG_KEYS = "SELECT id FROM events{where} ORDER BY id DESC LIMIT :limit"


async def _bounded(db: Backend, sql: str, cap: int) -> dict[str, Any]:
    params: dict[str, object] = {"cap": cap + 1}
    rows = await db.fetch(sql.format(where=_where([], params, "tenant_id")), params)
    found = int(rows[0][0])
    return {"count": min(found, cap), "more": found > cap}


async def dashboard(db: Backend, tables: Tables) -> dict[str, Any]:
    """Counts (capped), the head position, the newest events, lag, DLQ and outbox backlog."""
    newest = await log_page(db, None, 10)
    result: dict[str, Any] = {
        "head_position": await db.store.get_global_position(),
        "events": await _bounded(db, _BOUNDED_EVENTS, COUNT_CAP),
        "streams": await _bounded(db, _BOUNDED_STREAMS, STREAM_COUNT_CAP),
        "newest_events": newest["events"],
        "subscriptions": (await subscriptions(db, tables))["subscriptions"],
        "dlq": plain(await db.dlq.get_failure_stats()) if "dlq" in tables else None,
        "outbox": plain(await db.outbox.get_stats()) if "outbox" in tables else None,
        # streams soft-deleted, tombstoned or archived (the table has no tenant column)
        "retention": (
            await _state_counts(db) if "retention" in tables and bound_tenant() is None else None
        ),
    }
    return result


async def _state_counts(db: Backend) -> dict[str, Any]:
    counts, more = await stream_state_counts(db, STREAM_COUNT_CAP)
    return {"counts": counts, "more": more}


async def streams_page(
    db: Backend,
    *,
    prefix: str | None,
    aggregate_type: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """A page of streams in (aggregate id, type) order, and the cursor of the next one."""
    ids = id_range(prefix) if prefix else None
    after: tuple[UUID, str] | None = None
    if cursor:
        after = decode_stream_key(cursor)
    rows = await list_streams(
        db, after=after, aggregate_type=aggregate_type or None, ids=ids, limit=limit
    )
    following = None
    if len(rows) == limit:
        last = rows[-1]
        following = encode_cursor("streams", [str(last.aggregate_id), last.aggregate_type])
    listed = [{"stream_id": row.stream_id, **plain(row)} for row in rows]
    return {"streams": listed, "next": following}


async def stream_detail(
    db: Backend, tables: Tables, stream_id: str, cursor: str | None, limit: int
) -> dict[str, Any]:
    """A page of a stream's events (by version) and its snapshot; `NotFoundError` if it has
    no events."""
    aggregate_id, aggregate_type = parse_stream_id(stream_id, "stream id")
    key = f"{aggregate_id}:{aggregate_type}" if aggregate_type else str(aggregate_id)
    after = decode_position("stream", cursor) if cursor else 0
    options = ReadOptions(from_position=after, limit=limit + 1)
    with reading(include_archived=True):  # an operator sees archived streams' events
        events = [event_record(stored) async for stored in db.store.read_stream(key, options)]
    retention = (
        await stream_states(db, aggregate_id, aggregate_type) if "retention" in tables else []
    )
    if not events and after == 0 and not retention:
        raise NotFoundError(f"stream {key} not found: it has no events")
    following = None
    if len(events) > limit:
        events = events[:limit]
        following = encode_cursor("stream", events[-1]["stream_position"])
    snapshot = None
    if aggregate_type and "snapshots" in tables:
        found = await db.snapshots.get_snapshot(aggregate_id, aggregate_type)
        if found is not None:
            snapshot = plain(found)
    return {"stream_id": key, "events": events, "next": following, "snapshot": snapshot,
            "retention": plain(retention)}


async def log_page(db: Backend, cursor: str | None, limit: int) -> dict[str, Any]:
    """The global log, newest first: `limit` events before the cursor (default: the head)."""
    conditions: list[str] = []
    params: dict[str, object] = {"limit": limit}
    if cursor:
        conditions.append("id < :before")
        params["before"] = decode_position("log", cursor)
    keys = await db.fetch(_LOG_KEYS.format(where=_where(conditions, params, "tenant_id")), params)
    if not keys:
        return {"events": [], "next": None}
    low, high = int(keys[-1][0]), int(keys[0][0])
    options = ReadOptions(from_position=low - 1, limit=high - low + 1)
    events = [event_record(stored) async for stored in db.store.read_all(options)]
    events = [each for each in events if each["global_position"] <= high]
    events.reverse()
    following = encode_cursor("log", low) if len(keys) == limit else None
    return {"events": events, "next": following}


async def event_detail(
    db: Backend, position: int, registry: EventRegistry | None
) -> dict[str, Any]:
    """The event at global `position`: its type, `event_version` and payload as stored, and
    (`current`) what the app's upcasters and old names make of it, if they apply."""
    params: dict[str, object] = {"position": position}
    where = _where(["id = :position"], params, "tenant_id")
    rows = await db.fetch(f"SELECT event_type, payload FROM events{where}", params)
    if not rows:
        raise NotFoundError(f"no event at global position {position}")
    stored_type, raw = rows[0][0], rows[0][1]
    payload = json.loads(raw) if isinstance(raw, str | bytes) else dict(raw)
    version = payload.get("event_version")
    current = current_shape(stored_type, payload, payload.get("event_id"), registry)
    options = ReadOptions(from_position=position - 1, limit=1)
    try:
        record = next(
            iter([event_record(stored) async for stored in db.store.read_all(options)])
        )
    except EventSourceError as exc:  # unreadable as the code stands: shown as stored
        record = {"global_position": position, "event_type": stored_type, "known": False,
                  "read_error": " ".join(str(exc).split())}
    return {
        **record,
        "stored_type": stored_type,
        "stored_event_version": version if type(version) is int else None,
        "stored_payload": payload,
        "current": current,
    }


async def subscriptions(db: Backend, tables: Tables) -> dict[str, Any]:
    """Every checkpoint with its lag (none when the checkpoint table is not in use)."""
    if "checkpoints" not in tables:
        return {"subscriptions": [], "in_use": False}
    items = [await progress(db, data) for data in await db.checkpoints.get_all_checkpoints()]
    return {"subscriptions": plain(items), "in_use": True}


async def dlq_page(
    db: Backend, tables: Tables, status: str, projection: str | None, limit: int
) -> dict[str, Any]:
    """Dead letters of `status`, newest failure first, and the counts."""
    if status not in _STATUSES:
        raise CliUsageError(f"status {status!r}: use one of {', '.join(_STATUSES)}")
    if "dlq" not in tables:
        return {"entries": [], "stats": None, "in_use": False}
    entries = await db.dlq.get_failed_events(projection or None, status, limit)
    stats = await db.dlq.get_failure_stats()
    return {"entries": plain([_summary(e) for e in entries]), "stats": plain(stats), "in_use": True}


async def dlq_entry(db: Backend, tables: Tables, dlq_id: int) -> dict[str, Any]:
    """One dead letter with its stack trace and event; `NotFoundError` if unknown."""
    entry = await db.dlq.get_failed_event_by_id(dlq_id) if "dlq" in tables else None
    if entry is None:
        raise NotFoundError(f"no dead letter with id {dlq_id}")
    return dict(plain(_detail(entry)))
