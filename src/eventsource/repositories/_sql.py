"""SQL repositories written once: statements, row mapping and logic shared by SQLite and
PostgreSQL. Driver-free: a backend supplies an `Executor` that runs these statements.

Every statement uses named `:param` placeholders (sqlite3 and SQLAlchemy `text()` both take
them) and SQL both dialects accept. Values go in as Python objects (the executor converts UUIDs
and datetimes for its driver); values come out as the driver returns them, and the mapping
below accepts both the native types (PostgreSQL) and their text forms (SQLite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsource._ids import new_uuid4
from eventsource.events.base import DomainEvent
from eventsource.observability.tracing import TracingMixin
from eventsource.repositories._json import json_dumps, json_loads
from eventsource.repositories.checkpoint import CheckpointData, LagMetrics
from eventsource.repositories.dlq import (
    DLQEntry,
    DLQStats,
    ProjectionFailureCount,
    stacktrace_of,
)
from eventsource.repositories.outbox import OutboxEntry, OutboxStats, outbox_event_json
from eventsource.stores._rules import encode_payload

__all__ = [
    "ADD_OUTBOX_SQL",
    "Executor",
    "Params",
    "SQLCheckpointRepository",
    "SQLDLQRepository",
    "SQLOutboxRepository",
    "outbox_params",
]

Params = Mapping[str, object]
Row = Sequence[Any]


class Executor(Protocol):
    """Runs one statement per call in its own transaction (or the caller's, see backends)."""

    async def fetch(self, sql: str, params: Params) -> list[Row]: ...

    async def execute(self, sql: str, params: Params) -> int:
        """Run a write; the number of rows it touched."""

    async def has_table(self, name: str) -> bool: ...

    async def execute_on(self, connection: Any, sql: str, params: Params) -> None:
        """Run a write through the caller's connection, inside the caller's transaction."""


def _uuid(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _iso(value: Any) -> str | None:
    moment = _time(value)
    return moment.isoformat() if moment is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


# -- checkpoints --------------------------------------------------------------------------

_CHECKPOINT_COLUMNS = (
    "projection_name, last_event_id, last_event_type, last_processed_at, events_processed, "
    "global_position, cursor"
)
_UPSERT_CHECKPOINT = """INSERT INTO projection_checkpoints (projection_name, last_event_id,
    last_event_type, last_processed_at, global_position, cursor, events_processed,
    created_at, updated_at)
VALUES (:name, :event_id, :event_type, :now, :position, :cursor, :count, :now, :now)
ON CONFLICT (projection_name) DO UPDATE SET
    last_event_id = excluded.last_event_id,
    last_event_type = excluded.last_event_type,
    last_processed_at = excluded.last_processed_at,
    events_processed = COALESCE(projection_checkpoints.events_processed, 0)
        + excluded.events_processed,
    updated_at = excluded.updated_at{position}"""
# `update_checkpoint` keeps the saved position and cursor; `save_position` replaces both.
UPDATE_CHECKPOINT_SQL = _UPSERT_CHECKPOINT.format(position="")
SAVE_POSITION_SQL = _UPSERT_CHECKPOINT.format(
    position=",\n    global_position = excluded.global_position,\n    cursor = excluded.cursor"
)
_GET_CHECKPOINT = (
    f"SELECT {_CHECKPOINT_COLUMNS} FROM projection_checkpoints WHERE projection_name = :name"
)
_ALL_CHECKPOINTS = f"SELECT {_CHECKPOINT_COLUMNS} FROM projection_checkpoints"
_DELETE_CHECKPOINT = "DELETE FROM projection_checkpoints WHERE projection_name = :name"
_NEWEST_EVENT = 'SELECT event_id, "timestamp" FROM events{where} ORDER BY "timestamp" DESC LIMIT 1'


def _checkpoint(row: Row) -> CheckpointData:
    return CheckpointData(
        projection_name=row[0],
        last_event_id=_uuid(row[1]),
        last_event_type=row[2],
        last_processed_at=_time(row[3]),
        events_processed=int(row[4] or 0),
        global_position=row[5],
        cursor=row[6],
    )


def checkpoint_params(
    name: str,
    event_id: UUID,
    event_type: str,
    *,
    count: int = 1,
    position: int | None = None,
    cursor: str | None = None,
) -> dict[str, object]:
    return {
        "name": name,
        "event_id": event_id,
        "event_type": event_type,
        "now": _now(),
        "position": position,
        "cursor": cursor,
        "count": count,
    }


class SQLCheckpointRepository(TracingMixin):
    """Checkpoints in `projection_checkpoints` (API.md §5.2), over a backend's executor."""

    def __init__(self, executor: Executor, enable_tracing: bool = True) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor

    async def get_checkpoint(self, projection_name: str) -> UUID | None:
        with self._create_span_context(
            "eventsource.checkpoint.get_checkpoint",
            {"eventsource.projection.name": projection_name},
        ):
            data = await self.get_checkpoint_data(projection_name)
        return data.last_event_id if data is not None else None

    async def update_checkpoint(
        self, projection_name: str, event_id: UUID, event_type: str
    ) -> None:
        with self._create_span_context(
            "eventsource.checkpoint.update_checkpoint",
            {"eventsource.projection.name": projection_name},
        ):
            params = checkpoint_params(projection_name, event_id, event_type)
            await self._db.execute(UPDATE_CHECKPOINT_SQL, params)

    async def update_checkpoint_on(
        self,
        connection: Any,
        projection_name: str,
        event_id: UUID,
        event_type: str,
        count: int = 1,
        *,
        position: int | None = None,
        cursor: str | None = None,
    ) -> None:
        """`update_checkpoint` for `count` events, written in the transaction of `connection`;
        with a `position`, the position and cursor too (as `save_position`)."""
        params = checkpoint_params(
            projection_name, event_id, event_type, count=count, position=position, cursor=cursor
        )
        sql = UPDATE_CHECKPOINT_SQL if position is None else SAVE_POSITION_SQL
        await self._db.execute_on(connection, sql, params)

    async def save_position(
        self,
        subscription_id: str,
        position: int,
        event_id: UUID,
        event_type: str,
        cursor: str | None = None,
    ) -> None:
        params = checkpoint_params(
            subscription_id, event_id, event_type, position=position, cursor=cursor
        )
        await self._db.execute(SAVE_POSITION_SQL, params)

    async def get_position(self, subscription_id: str) -> int | None:
        data = await self.get_checkpoint_data(subscription_id)
        return data.global_position if data is not None else None

    async def get_cursor(self, subscription_id: str) -> str | None:
        """The commit-safe cursor saved with the position, if the store has one."""
        data = await self.get_checkpoint_data(subscription_id)
        return data.cursor if data is not None else None

    async def get_checkpoint_data(self, projection_name: str) -> CheckpointData | None:
        rows = await self._db.fetch(_GET_CHECKPOINT, {"name": projection_name})
        return _checkpoint(rows[0]) if rows else None

    async def get_all_checkpoints(self) -> list[CheckpointData]:
        # Sorted here, not in SQL: collations differ between databases, code points do not.
        rows = await self._db.fetch(_ALL_CHECKPOINTS, {})
        return sorted(map(_checkpoint, rows), key=lambda data: data.projection_name)

    async def reset_checkpoint(self, projection_name: str) -> None:
        with self._create_span_context(
            "eventsource.checkpoint.reset_checkpoint",
            {"eventsource.projection.name": projection_name},
        ):
            await self._db.execute(_DELETE_CHECKPOINT, {"name": projection_name})

    async def get_lag_metrics(
        self, projection_name: str, event_types: list[str] | None = None
    ) -> LagMetrics | None:
        """Progress, and how far `last_processed_at` trails the newest event of `event_types`
        (all types if None) in the `events` table, when that table exists."""
        data = await self.get_checkpoint_data(projection_name)
        if data is None:
            return None
        latest_id, lag = None, 0.0
        if await self._db.has_table("events"):
            types = list(event_types or [])
            where = f" WHERE event_type IN ({', '.join(f':t{i}' for i in range(len(types)))})"
            sql = _NEWEST_EVENT.format(where=where if types else "")
            rows = await self._db.fetch(sql, {f"t{i}": name for i, name in enumerate(types)})
            if rows:
                latest_id = str(_uuid(rows[0][0]))
                newest = _time(rows[0][1])
                if newest is not None and data.last_processed_at is not None:
                    lag = max(0.0, (newest - data.last_processed_at).total_seconds())
        return LagMetrics(
            projection_name=projection_name,
            last_event_id=str(data.last_event_id) if data.last_event_id else None,
            latest_event_id=latest_id,
            lag_seconds=lag,
            events_processed=data.events_processed,
            last_processed_at=_iso(data.last_processed_at),
        )


# -- dead letters -------------------------------------------------------------------------

_DLQ_COLUMNS = (
    "id, event_id, projection_name, event_type, CAST(event_data AS TEXT), error_message, "
    "error_stacktrace, retry_count, first_failed_at, last_failed_at, status, resolved_at, "
    "resolved_by"
)
_ADD_FAILED = """INSERT INTO dead_letter_queue (event_id, projection_name, event_type, event_data,
    error_message, error_stacktrace, retry_count, first_failed_at, last_failed_at, status)
VALUES (:event_id, :projection_name, :event_type, :event_data, :error_message, :stacktrace,
    :retry_count, :now, :now, 'failed')
ON CONFLICT (event_id, projection_name) DO UPDATE SET
    retry_count = excluded.retry_count,
    error_message = excluded.error_message,
    error_stacktrace = excluded.error_stacktrace,
    last_failed_at = excluded.last_failed_at,
    status = 'failed'"""
_FAILED_EVENTS = (
    f"SELECT {_DLQ_COLUMNS} FROM dead_letter_queue WHERE status = :status{{projection}} "
    "ORDER BY first_failed_at DESC, id DESC LIMIT :limit"
)
_DLQ_BY_ID = f"SELECT {_DLQ_COLUMNS} FROM dead_letter_queue WHERE id = :id"
_RESOLVE = """UPDATE dead_letter_queue SET status = 'resolved', resolved_at = :now,
    resolved_by = :resolved_by WHERE id = :id"""
_RETRYING = "UPDATE dead_letter_queue SET status = 'retrying' WHERE id = :id"
_OPEN = "status IN ('failed', 'retrying')"
_DLQ_STATS = f"""SELECT COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'retrying' THEN 1 ELSE 0 END), 0),
    COUNT(DISTINCT projection_name), MIN(first_failed_at)
FROM dead_letter_queue WHERE {_OPEN}"""
_FAILURE_COUNTS = f"""SELECT projection_name, COUNT(*), MIN(first_failed_at), MAX(last_failed_at)
FROM dead_letter_queue WHERE {_OPEN} GROUP BY projection_name"""
_DELETE_RESOLVED = """DELETE FROM dead_letter_queue
WHERE status = 'resolved' AND resolved_at IS NOT NULL AND resolved_at < :cutoff"""


def _dlq_entry(row: Row) -> DLQEntry:
    return DLQEntry(
        id=int(row[0]),
        event_id=_uuid(row[1]),  # type: ignore[arg-type]
        projection_name=row[2],
        event_type=row[3],
        event_data=row[4],
        error_message=row[5],
        error_stacktrace=row[6],
        retry_count=int(row[7]),
        first_failed_at=_time(row[8]),
        last_failed_at=_time(row[9]),
        status=row[10],
        resolved_at=_time(row[11]),
        resolved_by=row[12],
    )


class SQLDLQRepository(TracingMixin):
    """Dead letters in `dead_letter_queue` (API.md §5.3), over a backend's executor."""

    def __init__(self, executor: Executor, enable_tracing: bool = True) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor

    async def add_failed_event(
        self,
        event_id: UUID,
        projection_name: str,
        event_type: str,
        event_data: dict[str, Any],
        error: Exception,
        retry_count: int = 0,
    ) -> None:
        with self._create_span_context(
            "eventsource.dlq.add",
            {"eventsource.projection.name": projection_name, "eventsource.event.id": event_id},
        ):
            params = {
                "event_id": event_id,
                "projection_name": projection_name,
                "event_type": event_type,
                "event_data": json_dumps(event_data),
                "error_message": str(error),
                "stacktrace": stacktrace_of(error),
                "retry_count": retry_count,
                "now": _now(),
            }
            await self._db.execute(_ADD_FAILED, params)

    async def get_failed_events(
        self, projection_name: str | None = None, status: str = "failed", limit: int = 100
    ) -> list[DLQEntry]:
        with self._create_span_context("eventsource.dlq.get", {"eventsource.dlq.status": status}):
            params: dict[str, object] = {"status": status, "limit": limit}
            clause = ""
            if projection_name is not None:
                clause, params["projection_name"] = (
                    " AND projection_name = :projection_name",
                    (projection_name),
                )
            rows = await self._db.fetch(_FAILED_EVENTS.format(projection=clause), params)
        return [_dlq_entry(row) for row in rows]

    async def get_failed_event_by_id(self, dlq_id: int | str) -> DLQEntry | None:
        rows = await self._db.fetch(_DLQ_BY_ID, {"id": int(dlq_id)})
        return _dlq_entry(rows[0]) if rows else None

    async def mark_resolved(self, dlq_id: int | str, resolved_by: str | UUID) -> None:
        with self._create_span_context("eventsource.dlq.resolve", {"eventsource.dlq.id": dlq_id}):
            params = {"id": int(dlq_id), "now": _now(), "resolved_by": str(resolved_by)}
            await self._db.execute(_RESOLVE, params)

    async def mark_retrying(self, dlq_id: int | str) -> None:
        with self._create_span_context("eventsource.dlq.retry", {"eventsource.dlq.id": dlq_id}):
            await self._db.execute(_RETRYING, {"id": int(dlq_id)})

    async def get_failure_stats(self) -> DLQStats:
        [row] = await self._db.fetch(_DLQ_STATS, {})
        return DLQStats(
            total_failed=int(row[0]),
            total_retrying=int(row[1]),
            affected_projections=int(row[2]),
            oldest_failure=_iso(row[3]),
        )

    async def get_projection_failure_counts(self) -> list[ProjectionFailureCount]:
        counts = [
            ProjectionFailureCount(
                projection_name=row[0],
                failure_count=int(row[1]),
                oldest_failure=_iso(row[2]),
                most_recent_failure=_iso(row[3]),
            )
            for row in await self._db.fetch(_FAILURE_COUNTS, {})
        ]
        counts.sort(key=lambda c: (-c.failure_count, c.projection_name))
        return counts

    async def delete_resolved_events(self, older_than_days: int = 30) -> int:
        cutoff = _now() - timedelta(days=older_than_days)
        return await self._db.execute(_DELETE_RESOLVED, {"cutoff": cutoff})


# -- outbox -------------------------------------------------------------------------------

_OUTBOX_COLUMNS = (
    "id, event_id, event_type, aggregate_id, aggregate_type, tenant_id, CAST(event_data AS TEXT), "
    "created_at, status, published_at, retry_count, last_error"
)
ADD_OUTBOX_SQL = """INSERT INTO event_outbox (id, event_id, event_type, aggregate_id,
    aggregate_type, tenant_id, event_data, created_at, status, retry_count)
VALUES (:id, :event_id, :event_type, :aggregate_id, :aggregate_type, :tenant_id, :event_data,
    :now, 'pending', 0)"""
# `{order}` is the backend's insertion-order column (see OutboxOrder below).
_PENDING = f"""SELECT {_OUTBOX_COLUMNS} FROM event_outbox WHERE status = 'pending'
ORDER BY {{order}} LIMIT :limit"""
_PUBLISHABLE = f"""SELECT {_OUTBOX_COLUMNS} FROM event_outbox o WHERE o.status = 'pending'
AND NOT EXISTS (SELECT 1 FROM event_outbox f WHERE f.status = 'failed'
    AND f.aggregate_id = o.aggregate_id AND f.aggregate_type = o.aggregate_type)
ORDER BY o.{{order}} LIMIT :limit"""
_FAILED_ROWS = f"""SELECT {_OUTBOX_COLUMNS} FROM event_outbox WHERE status = 'failed'
ORDER BY {{order}} LIMIT :limit"""
_PUBLISHED = "UPDATE event_outbox SET status = 'published', published_at = :now WHERE id = :id"
_PUBLISHED_MANY = (
    "UPDATE event_outbox SET status = 'published', published_at = :now WHERE id IN ({ids})"
)
_FAILED = "UPDATE event_outbox SET status = 'failed', last_error = :error WHERE id = :id"
_RETRY = """UPDATE event_outbox SET retry_count = retry_count + 1, last_error = :error
WHERE id = :id"""
_REQUEUE = "UPDATE event_outbox SET status = 'pending', retry_count = 0 WHERE status = 'failed'"
_CLEANUP = """DELETE FROM event_outbox
WHERE status = 'published' AND published_at IS NOT NULL AND published_at < :cutoff"""
_OUTBOX_STATS = """SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'published' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0),
    MIN(CASE WHEN status = 'pending' THEN created_at END),
    COALESCE(AVG(retry_count), 0)
FROM event_outbox"""
_MAX_IDS = 500  # ids per `IN (...)`: well under every SQLite build's variable limit


def outbox_params(
    event: DomainEvent,
    *,
    aggregate_id: UUID | None = None,
    aggregate_type: str | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """The `ADD_OUTBOX_SQL` parameters for one event: the one definition of an outbox row, for
    `add_event` and for stores writing rows inside their appends (which pass the stream's
    aggregate id and type, authoritative over the event's own)."""
    aggregate_id = event.aggregate_id if aggregate_id is None else aggregate_id
    aggregate_type = event.aggregate_type if aggregate_type is None else aggregate_type
    return {
        "id": new_uuid4(),
        "event_id": event.event_id,
        "event_type": event.event_type,
        "aggregate_id": aggregate_id,
        "aggregate_type": aggregate_type,
        "tenant_id": event.tenant_id,
        "event_data": outbox_event_json(
            event, encode_payload(event), aggregate_id, aggregate_type
        ),
        "now": _now() if now is None else now,
    }


def _outbox_entry(row: Row) -> OutboxEntry:
    return OutboxEntry(
        id=_uuid(row[0]),  # type: ignore[arg-type]
        event_id=_uuid(row[1]),  # type: ignore[arg-type]
        event_type=row[2],
        aggregate_id=_uuid(row[3]),  # type: ignore[arg-type]
        aggregate_type=row[4],
        tenant_id=_uuid(row[5]),
        event_data=json_loads(row[6]),
        created_at=_time(row[7]),  # type: ignore[arg-type]
        status=row[8],
        published_at=_time(row[9]),
        retry_count=int(row[10]),
        last_error=row[11],
    )


class SQLOutboxRepository(TracingMixin):
    """Outbox rows in `event_outbox` (API.md §10), over a backend's executor.

    `order_column` is the column that numbers rows in insertion order (`seq` in PostgreSQL,
    the `rowid` in SQLite): pending rows come out in that order.
    """

    def __init__(
        self, executor: Executor, enable_tracing: bool = True, *, order_column: str = "seq"
    ) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor
        self._pending_sql = _PENDING.format(order=order_column)
        self._publishable_sql = _PUBLISHABLE.format(order=order_column)
        self._failed_sql = _FAILED_ROWS.format(order=order_column)

    async def add_event(self, event: DomainEvent) -> UUID:
        with self._create_span_context(
            "eventsource.outbox.add", {"eventsource.event.id": event.event_id}
        ):
            params = outbox_params(event)
            await self._db.execute(ADD_OUTBOX_SQL, params)
        return params["id"]  # type: ignore[return-value]

    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]:
        with self._create_span_context("eventsource.outbox.get_pending", {"limit": limit}):
            rows = await self._db.fetch(self._pending_sql, {"limit": limit})
        return [_outbox_entry(row) for row in rows]

    async def get_publishable_events(self, limit: int = 100) -> list[OutboxEntry]:
        """Pending rows in insertion order, except those of aggregates with a failed row."""
        with self._create_span_context("eventsource.outbox.get_pending", {"limit": limit}):
            rows = await self._db.fetch(self._publishable_sql, {"limit": limit})
        return [_outbox_entry(row) for row in rows]

    async def get_failed_events(self, limit: int = 100) -> list[OutboxEntry]:
        rows = await self._db.fetch(self._failed_sql, {"limit": limit})
        return [_outbox_entry(row) for row in rows]

    async def mark_published(self, outbox_id: UUID) -> None:
        with self._create_span_context(
            "eventsource.outbox.mark_published", {"eventsource.outbox.id": outbox_id}
        ):
            await self._db.execute(_PUBLISHED, {"id": outbox_id, "now": _now()})

    async def mark_published_many(self, outbox_ids: Sequence[UUID]) -> int:
        """One UPDATE per 500 ids (one per relay batch of the default size)."""
        changed = 0
        with self._create_span_context(
            "eventsource.outbox.mark_published", {"eventsource.outbox.count": len(outbox_ids)}
        ):
            now = _now()
            for start in range(0, len(outbox_ids), _MAX_IDS):
                chunk = outbox_ids[start : start + _MAX_IDS]
                params: dict[str, object] = {f"i{n}": key for n, key in enumerate(chunk)}
                params["now"] = now
                marks = ", ".join(f":i{n}" for n in range(len(chunk)))
                changed += await self._db.execute(_PUBLISHED_MANY.format(ids=marks), params)
        return changed

    async def mark_failed(self, outbox_id: UUID, error: str) -> None:
        await self._db.execute(_FAILED, {"id": outbox_id, "error": error})

    async def increment_retry(self, outbox_id: UUID, error: str | None = None) -> None:
        await self._db.execute(_RETRY, {"id": outbox_id, "error": error})

    async def requeue_failed(self, outbox_id: UUID | None = None) -> int:
        if outbox_id is None:
            return await self._db.execute(_REQUEUE, {})
        return await self._db.execute(f"{_REQUEUE} AND id = :id", {"id": outbox_id})

    async def cleanup_published(self, days: int = 7) -> int:
        return await self._db.execute(_CLEANUP, {"cutoff": _now() - timedelta(days=days)})

    async def get_stats(self) -> OutboxStats:
        [row] = await self._db.fetch(_OUTBOX_STATS, {})
        return OutboxStats(
            pending_count=int(row[0]),
            published_count=int(row[1]),
            failed_count=int(row[2]),
            oldest_pending=_time(row[3]),
            avg_retries=float(row[4]),
        )
