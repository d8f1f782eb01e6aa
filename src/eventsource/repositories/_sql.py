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
from eventsource._sql.common import tenant_clause, tenant_variants
from eventsource._storable_json import dumps_storable
from eventsource.events.base import DomainEvent
from eventsource.exceptions import SerializationError, TenantMismatchError
from eventsource.observability.tracing import TracingMixin
from eventsource.repositories._json import EventSourceJSONEncoder, json_loads
from eventsource.repositories.checkpoint import (
    CheckpointData,
    LagMetrics,
    checked_count,
    scoped_checkpoint_name,
    tenant_suffix,
    unscoped,
)
from eventsource.repositories.dlq import (
    DLQEntry,
    DLQStats,
    ProjectionFailureCount,
    scoped_event_data,
    stacktrace_of,
)
from eventsource.repositories.outbox import OutboxEntry, OutboxStats, outbox_event_json
from eventsource.stores.codec import encode_payload
from eventsource.tenancy import bound_tenant, stamp_events

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

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text value of top-level `key` of the JSON in `column` (NULL if none)."""


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
# Inside a tenant scope: the rows whose key ends with the tenant's suffix (`:suffix` is a LIKE
# pattern; the exact suffix is checked again in Python, as LIKE may ignore case).
_TENANT_CHECKPOINTS = f"{_ALL_CHECKPOINTS} WHERE projection_name LIKE :suffix"
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
            data = await self._row(scoped_checkpoint_name(projection_name, bound_tenant()))
        return data.last_event_id if data is not None else None

    async def update_checkpoint(
        self, projection_name: str, event_id: UUID, event_type: str
    ) -> None:
        with self._create_span_context(
            "eventsource.checkpoint.update_checkpoint",
            {"eventsource.projection.name": projection_name},
        ):
            key = scoped_checkpoint_name(projection_name, bound_tenant())
            params = checkpoint_params(key, event_id, event_type)
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
        key = scoped_checkpoint_name(projection_name, bound_tenant())
        params = checkpoint_params(
            key, event_id, event_type, count=count, position=position, cursor=cursor
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
        count: int = 1,
    ) -> None:
        """Save the position (and cursor); `count`: the events handled since the last save."""
        key = scoped_checkpoint_name(subscription_id, bound_tenant())
        params = checkpoint_params(
            key, event_id, event_type, count=checked_count(count), position=position,
            cursor=cursor,
        )
        await self._db.execute(SAVE_POSITION_SQL, params)

    async def get_position(self, subscription_id: str) -> int | None:
        data = await self._row(scoped_checkpoint_name(subscription_id, bound_tenant()))
        return data.global_position if data is not None else None

    async def get_cursor(self, subscription_id: str) -> str | None:
        """The commit-safe cursor saved with the position, if the store has one."""
        data = await self._row(scoped_checkpoint_name(subscription_id, bound_tenant()))
        return data.cursor if data is not None else None

    async def get_checkpoint_data(self, projection_name: str) -> CheckpointData | None:
        tenant = bound_tenant()
        data = await self._row(scoped_checkpoint_name(projection_name, tenant))
        return unscoped(data, tenant) if data is not None else None

    async def _row(self, key: str) -> CheckpointData | None:
        rows = await self._db.fetch(_GET_CHECKPOINT, {"name": key})
        return _checkpoint(rows[0]) if rows else None

    async def get_all_checkpoints(self) -> list[CheckpointData]:
        tenant = bound_tenant()
        if tenant is None:
            found = list(map(_checkpoint, await self._db.fetch(_ALL_CHECKPOINTS, {})))
        else:
            suffix = tenant_suffix(tenant)
            rows = await self._db.fetch(_TENANT_CHECKPOINTS, {"suffix": f"%{suffix}"})
            found = [
                unscoped(data, tenant)
                for data in map(_checkpoint, rows)
                if data.projection_name.endswith(suffix)
            ]
        # Sorted here, not in SQL: collations differ between databases, code points do not.
        return sorted(found, key=lambda data: data.projection_name)

    async def reset_checkpoint(self, projection_name: str) -> None:
        with self._create_span_context(
            "eventsource.checkpoint.reset_checkpoint",
            {"eventsource.projection.name": projection_name},
        ):
            key = scoped_checkpoint_name(projection_name, bound_tenant())
            await self._db.execute(_DELETE_CHECKPOINT, {"name": key})

    async def get_lag_metrics(
        self, projection_name: str, event_types: list[str] | None = None
    ) -> LagMetrics | None:
        """Progress, and how far `last_processed_at` trails the newest event of `event_types`
        (all types if None) in the `events` table, when that table exists."""
        tenant = bound_tenant()
        data = await self._row(scoped_checkpoint_name(projection_name, tenant))
        if data is None:
            return None
        latest_id, lag = None, 0.0
        if await self._db.has_table("events"):
            types = list(event_types or [])
            params: dict[str, object] = {f"t{i}": name for i, name in enumerate(types)}
            conditions = []
            if types:
                conditions.append(f"event_type IN ({', '.join(f':{key}' for key in params)})")
            if tenant is not None:  # the newest of the bound tenant's events
                conditions.append(tenant_clause(":tenant"))
                params["tenant"] = tenant
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            rows = await self._db.fetch(_NEWEST_EVENT.format(where=where), params)
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
    status = 'failed'{owner}"""
# Each statement below has a `{tenant}` slot: empty, or inside a tenant scope the condition
# that the row's event is the bound tenant's (`:tenant`; see SQLDLQRepository).
_FAILED_EVENTS = (
    f"SELECT {_DLQ_COLUMNS} FROM dead_letter_queue WHERE status = :status{{{{projection}}}}"
    "{tenant} ORDER BY first_failed_at DESC, id DESC LIMIT :limit"
)
_DLQ_BY_ID = f"SELECT {_DLQ_COLUMNS} FROM dead_letter_queue WHERE id = :id{{tenant}}"
_RESOLVE = """UPDATE dead_letter_queue SET status = 'resolved', resolved_at = :now,
    resolved_by = :resolved_by WHERE id = :id{tenant}"""
_RETRYING = "UPDATE dead_letter_queue SET status = 'retrying' WHERE id = :id{tenant}"
_OPEN = "status IN ('failed', 'retrying')"
_DLQ_STATS = f"""SELECT COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'retrying' THEN 1 ELSE 0 END), 0),
    COUNT(DISTINCT projection_name), MIN(first_failed_at)
FROM dead_letter_queue WHERE {_OPEN}{{tenant}}"""
_FAILURE_COUNTS = f"""SELECT projection_name, COUNT(*), MIN(first_failed_at), MAX(last_failed_at)
FROM dead_letter_queue WHERE {_OPEN}{{tenant}} GROUP BY projection_name"""
_DELETE_RESOLVED = """DELETE FROM dead_letter_queue
WHERE status = 'resolved' AND resolved_at IS NOT NULL AND resolved_at < :cutoff{tenant}"""


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


def _event_data_json(event_id: UUID, event_type: str, event_data: dict[str, Any]) -> str:
    """A dead letter's event data as JSON; SerializationError if it would not read back (one
    bad row would break every scoped read of the queue: they all look into the JSON)."""
    try:
        return dumps_storable(event_data, EventSourceJSONEncoder)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            event_type, f"the dead letter's event data cannot be stored: {exc}", event_id
        ) from exc


class SQLDLQRepository(TracingMixin):
    """Dead letters in `dead_letter_queue` (API.md §5.3), over a backend's executor.

    Scoped by the tenant of each row's event, which `event_data` carries (the table has no
    tenant column): see `eventsource.repositories.dlq`.
    """

    def __init__(self, executor: Executor, enable_tracing: bool = True) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor
        # The statements as (unscoped, scoped) pairs, in the executor's SQL dialect.
        tenant_of = executor.json_text("dead_letter_queue.event_data", "tenant_id")
        self._failed_events, self._by_id, self._resolve, self._retrying = (
            tenant_variants(sql, ":tenant", tenant_of)
            for sql in (_FAILED_EVENTS, _DLQ_BY_ID, _RESOLVE, _RETRYING)
        )
        self._stats, self._counts, self._delete_resolved = (
            tenant_variants(sql, ":tenant", tenant_of)
            for sql in (_DLQ_STATS, _FAILURE_COUNTS, _DELETE_RESOLVED)
        )
        self._add = (
            _ADD_FAILED.format(owner=""),
            _ADD_FAILED.format(owner=f"\nWHERE {tenant_clause(':tenant', tenant_of)}"),
        )

    def _scope(self, params: dict[str, object]) -> bool:
        """Add the bound tenant (as text, as JSON holds it) to `params`; True if bound."""
        tenant = bound_tenant()
        if tenant is not None:
            params["tenant"] = str(tenant)
        return tenant is not None

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
            tenant = bound_tenant()
            if tenant is not None:
                event_data = scoped_event_data(event_data, tenant, event_id, projection_name)
            params: dict[str, object] = {
                "event_id": event_id,
                "projection_name": projection_name,
                "event_type": event_type,
                "event_data": _event_data_json(event_id, event_type, event_data),
                "error_message": str(error),
                "stacktrace": stacktrace_of(error),
                "retry_count": retry_count,
                "now": _now(),
            }
            scoped = self._scope(params)
            if await self._db.execute(self._add[scoped], params) == 0 and tenant is not None:
                # The upsert met another tenant's row for this (event, projection): untouched.
                raise TenantMismatchError(
                    tenant, f"Dead letter of event {event_id} for {projection_name}"
                )

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
            sql = self._failed_events[self._scope(params)]
            rows = await self._db.fetch(sql.format(projection=clause), params)
        return [_dlq_entry(row) for row in rows]

    async def get_failed_event_by_id(self, dlq_id: int | str) -> DLQEntry | None:
        params: dict[str, object] = {"id": int(dlq_id)}
        rows = await self._db.fetch(self._by_id[self._scope(params)], params)
        return _dlq_entry(rows[0]) if rows else None

    async def mark_resolved(self, dlq_id: int | str, resolved_by: str | UUID) -> None:
        with self._create_span_context("eventsource.dlq.resolve", {"eventsource.dlq.id": dlq_id}):
            params: dict[str, object] = {
                "id": int(dlq_id), "now": _now(), "resolved_by": str(resolved_by)
            }
            await self._db.execute(self._resolve[self._scope(params)], params)

    async def mark_retrying(self, dlq_id: int | str) -> None:
        with self._create_span_context("eventsource.dlq.retry", {"eventsource.dlq.id": dlq_id}):
            params: dict[str, object] = {"id": int(dlq_id)}
            await self._db.execute(self._retrying[self._scope(params)], params)

    async def get_failure_stats(self) -> DLQStats:
        params: dict[str, object] = {}
        [row] = await self._db.fetch(self._stats[self._scope(params)], params)
        return DLQStats(
            total_failed=int(row[0]),
            total_retrying=int(row[1]),
            affected_projections=int(row[2]),
            oldest_failure=_iso(row[3]),
        )

    async def get_projection_failure_counts(self) -> list[ProjectionFailureCount]:
        params: dict[str, object] = {}
        sql = self._counts[self._scope(params)]
        counts = [
            ProjectionFailureCount(
                projection_name=row[0],
                failure_count=int(row[1]),
                oldest_failure=_iso(row[2]),
                most_recent_failure=_iso(row[3]),
            )
            for row in await self._db.fetch(sql, params)
        ]
        counts.sort(key=lambda c: (-c.failure_count, c.projection_name))
        return counts

    async def delete_resolved_events(self, older_than_days: int = 30) -> int:
        params: dict[str, object] = {"cutoff": _now() - timedelta(days=older_than_days)}
        return await self._db.execute(self._delete_resolved[self._scope(params)], params)


# -- outbox -------------------------------------------------------------------------------

_OUTBOX_COLUMNS = (
    "id, event_id, event_type, aggregate_id, aggregate_type, tenant_id, CAST(event_data AS TEXT), "
    "created_at, status, published_at, retry_count, last_error"
)
ADD_OUTBOX_SQL = """INSERT INTO event_outbox (id, event_id, event_type, aggregate_id,
    aggregate_type, tenant_id, event_data, created_at, status, retry_count)
VALUES (:id, :event_id, :event_type, :aggregate_id, :aggregate_type, :tenant_id, :event_data,
    :now, 'pending', 0)"""
# `{order}` is the backend's insertion-order column (see SQLOutboxRepository); each statement
# is an (unscoped, scoped) pair: the scoped one touches only the bound tenant's rows.
_PENDING = tenant_variants(
    f"""SELECT {_OUTBOX_COLUMNS} FROM event_outbox WHERE status = 'pending'{{tenant}}
ORDER BY {{{{order}}}} LIMIT :limit""",
    ":tenant",
)
_PUBLISHABLE = tenant_variants(
    f"""SELECT {_OUTBOX_COLUMNS} FROM event_outbox o WHERE o.status = 'pending'{{tenant}}
AND NOT EXISTS (SELECT 1 FROM event_outbox f WHERE f.status = 'failed'
    AND f.aggregate_id = o.aggregate_id AND f.aggregate_type = o.aggregate_type)
ORDER BY o.{{{{order}}}} LIMIT :limit""",
    ":tenant",
    "o.tenant_id",
)
_FAILED_ROWS = tenant_variants(
    f"""SELECT {_OUTBOX_COLUMNS} FROM event_outbox WHERE status = 'failed'{{tenant}}
ORDER BY {{{{order}}}} LIMIT :limit""",
    ":tenant",
)
_PUBLISHED = tenant_variants(
    "UPDATE event_outbox SET status = 'published', published_at = :now WHERE id = :id{tenant}",
    ":tenant",
)
_PUBLISHED_MANY = tenant_variants(
    "UPDATE event_outbox SET status = 'published', published_at = :now"
    " WHERE id IN ({{ids}}){tenant}",
    ":tenant",
)
_FAILED = tenant_variants(
    "UPDATE event_outbox SET status = 'failed', last_error = :error WHERE id = :id{tenant}",
    ":tenant",
)
_RETRY = tenant_variants(
    """UPDATE event_outbox SET retry_count = retry_count + 1, last_error = :error
WHERE id = :id{tenant}""",
    ":tenant",
)
_REQUEUE = tenant_variants(
    "UPDATE event_outbox SET status = 'pending', retry_count = 0 WHERE status = 'failed'{tenant}",
    ":tenant",
)
_CLEANUP = tenant_variants(
    """DELETE FROM event_outbox
WHERE status = 'published' AND published_at IS NOT NULL AND published_at < :cutoff{tenant}""",
    ":tenant",
)
_OUTBOX_STATS_ALL = """SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'published' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0),
    MIN(CASE WHEN status = 'pending' THEN created_at END),
    COALESCE(AVG(retry_count), 0)
FROM event_outbox"""
_OUTBOX_STATS = (_OUTBOX_STATS_ALL, f"{_OUTBOX_STATS_ALL} WHERE {tenant_clause(':tenant')}")
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


def _ordered(pair: tuple[str, str], order_column: str) -> tuple[str, str]:
    unscoped, scoped = pair
    return unscoped.format(order=order_column), scoped.format(order=order_column)


def _outbox_scope(params: dict[str, object]) -> bool:
    """Add the bound tenant to `params`; True if one is bound."""
    tenant = bound_tenant()
    if tenant is not None:
        params["tenant"] = tenant
    return tenant is not None


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

    Inside `tenant_scope(t)` every method reads and changes only t's rows (`tenant_id = t`;
    the ids of other tenants' rows are ignored like unknown ids), and `add_event` stamps a
    tenant-less event with t and refuses another tenant's (`TenantMismatchError`).

    `order_column` is the column that numbers rows in insertion order (`seq` in PostgreSQL,
    the `rowid` in SQLite): pending rows come out in that order.
    """

    def __init__(
        self, executor: Executor, enable_tracing: bool = True, *, order_column: str = "seq"
    ) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor
        self._pending_sql = _ordered(_PENDING, order_column)
        self._publishable_sql = _ordered(_PUBLISHABLE, order_column)
        self._failed_sql = _ordered(_FAILED_ROWS, order_column)

    async def add_event(self, event: DomainEvent) -> UUID:
        tenant = bound_tenant()
        if tenant is not None:
            [event] = stamp_events([event], tenant)
        with self._create_span_context(
            "eventsource.outbox.add", {"eventsource.event.id": event.event_id}
        ):
            params = outbox_params(event)
            await self._db.execute(ADD_OUTBOX_SQL, params)
        return params["id"]  # type: ignore[return-value]

    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]:
        with self._create_span_context("eventsource.outbox.get_pending", {"limit": limit}):
            params: dict[str, object] = {"limit": limit}
            rows = await self._db.fetch(self._pending_sql[_outbox_scope(params)], params)
        return [_outbox_entry(row) for row in rows]

    async def get_publishable_events(self, limit: int = 100) -> list[OutboxEntry]:
        """Pending rows in insertion order, except those of aggregates with a failed row."""
        with self._create_span_context("eventsource.outbox.get_pending", {"limit": limit}):
            params: dict[str, object] = {"limit": limit}
            rows = await self._db.fetch(self._publishable_sql[_outbox_scope(params)], params)
        return [_outbox_entry(row) for row in rows]

    async def get_failed_events(self, limit: int = 100) -> list[OutboxEntry]:
        params: dict[str, object] = {"limit": limit}
        rows = await self._db.fetch(self._failed_sql[_outbox_scope(params)], params)
        return [_outbox_entry(row) for row in rows]

    async def mark_published(self, outbox_id: UUID) -> None:
        with self._create_span_context(
            "eventsource.outbox.mark_published", {"eventsource.outbox.id": outbox_id}
        ):
            params: dict[str, object] = {"id": outbox_id, "now": _now()}
            await self._db.execute(_PUBLISHED[_outbox_scope(params)], params)

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
                sql = _PUBLISHED_MANY[_outbox_scope(params)].format(ids=marks)
                changed += await self._db.execute(sql, params)
        return changed

    async def mark_failed(self, outbox_id: UUID, error: str) -> None:
        params: dict[str, object] = {"id": outbox_id, "error": error}
        await self._db.execute(_FAILED[_outbox_scope(params)], params)

    async def increment_retry(self, outbox_id: UUID, error: str | None = None) -> None:
        params: dict[str, object] = {"id": outbox_id, "error": error}
        await self._db.execute(_RETRY[_outbox_scope(params)], params)

    async def requeue_failed(self, outbox_id: UUID | None = None) -> int:
        params: dict[str, object] = {}
        sql = _REQUEUE[_outbox_scope(params)]
        if outbox_id is None:
            return await self._db.execute(sql, params)
        params["id"] = outbox_id
        return await self._db.execute(f"{sql} AND id = :id", params)

    async def cleanup_published(self, days: int = 7) -> int:
        params: dict[str, object] = {"cutoff": _now() - timedelta(days=days)}
        return await self._db.execute(_CLEANUP[_outbox_scope(params)], params)

    async def get_stats(self) -> OutboxStats:
        params: dict[str, object] = {}
        [row] = await self._db.fetch(_OUTBOX_STATS[_outbox_scope(params)], params)
        return OutboxStats(
            pending_count=int(row[0]),
            published_count=int(row[1]),
            failed_count=int(row[2]),
            oldest_pending=_time(row[3]),
            avg_retries=float(row[4]),
        )
