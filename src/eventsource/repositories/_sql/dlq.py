"""`SQLDLQRepository`: dead letters in `dead_letter_queue`, over an executor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from eventsource._sql.common import tenant_clause, tenant_variants
from eventsource._storable_json import dumps_storable
from eventsource.exceptions import SerializationError
from eventsource.observability.tracing import trace_methods
from eventsource.repositories._dlq import (
    DLQ_SPANS,
    DeadLetterIntake,
    DLQEntry,
    DLQStats,
    FailedEvent,
    ProjectionFailureCount,
    stacktrace_of,
)
from eventsource.repositories._json import EventSourceJSONEncoder
from eventsource.repositories._sql import Executor, Row, as_datetime, as_iso, as_uuid, utc_now
from eventsource.tenancy import bound_tenant

__all__ = ["SQLDLQRepository"]

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
        event_id=as_uuid(row[1]),  # type: ignore[arg-type]
        projection_name=row[2],
        event_type=row[3],
        event_data=row[4],
        error_message=row[5],
        error_stacktrace=row[6],
        retry_count=int(row[7]),
        first_failed_at=as_datetime(row[8]),
        last_failed_at=as_datetime(row[9]),
        status=row[10],
        resolved_at=as_datetime(row[11]),
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


@trace_methods(DLQ_SPANS)
class SQLDLQRepository(DeadLetterIntake):
    """Dead letters in `dead_letter_queue`, over a backend's executor.

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

    async def _park(self, failed: FailedEvent, tenant: UUID | None) -> bool:
        params: dict[str, object] = {
            "event_id": failed.event_id,
            "projection_name": failed.projection_name,
            "event_type": failed.event_type,
            "event_data": _event_data_json(failed.event_id, failed.event_type, failed.event_data),
            "error_message": str(failed.error),
            "stacktrace": stacktrace_of(failed.error),
            "retry_count": failed.retry_count,
            "now": utc_now(),
        }
        # Inside a scope the upsert leaves another tenant's row for this (event, projection)
        # untouched: no row changes.
        return await self._db.execute(self._add[self._scope(params)], params) > 0

    async def get_failed_events(
        self, projection_name: str | None = None, status: str = "failed", limit: int = 100
    ) -> list[DLQEntry]:
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
        params: dict[str, object] = {
            "id": int(dlq_id), "now": utc_now(), "resolved_by": str(resolved_by)
        }
        await self._db.execute(self._resolve[self._scope(params)], params)

    async def mark_retrying(self, dlq_id: int | str) -> None:
        params: dict[str, object] = {"id": int(dlq_id)}
        await self._db.execute(self._retrying[self._scope(params)], params)

    async def get_failure_stats(self) -> DLQStats:
        params: dict[str, object] = {}
        [row] = await self._db.fetch(self._stats[self._scope(params)], params)
        return DLQStats(
            total_failed=int(row[0]),
            total_retrying=int(row[1]),
            affected_projections=int(row[2]),
            oldest_failure=as_iso(row[3]),
        )

    async def get_projection_failure_counts(self) -> list[ProjectionFailureCount]:
        params: dict[str, object] = {}
        sql = self._counts[self._scope(params)]
        counts = [
            ProjectionFailureCount(
                projection_name=row[0],
                failure_count=int(row[1]),
                oldest_failure=as_iso(row[2]),
                most_recent_failure=as_iso(row[3]),
            )
            for row in await self._db.fetch(sql, params)
        ]
        counts.sort(key=lambda c: (-c.failure_count, c.projection_name))
        return counts

    async def delete_resolved_events(self, older_than_days: int = 30) -> int:
        params: dict[str, object] = {"cutoff": utc_now() - timedelta(days=older_than_days)}
        return await self._db.execute(self._delete_resolved[self._scope(params)], params)
