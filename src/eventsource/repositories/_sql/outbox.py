"""`SQLOutboxRepository`: outbox rows in `event_outbox`, over an executor; `outbox_params`, the
one definition of an outbox row (the SQLite store writes rows with it inside its appends)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from eventsource._ids import new_uuid4
from eventsource._sql.common import tenant_clause, tenant_variants
from eventsource.events.base import DomainEvent
from eventsource.observability.tracing import TracingMixin, trace_methods
from eventsource.repositories._json import json_loads
from eventsource.repositories._outbox import (
    OUTBOX_SPANS,
    OutboxEntry,
    OutboxStats,
    outbox_event_json,
)
from eventsource.repositories._sql import Executor, Row, as_datetime, as_uuid, utc_now
from eventsource.stores.codec import encode_payload
from eventsource.tenancy import bound_tenant, stamp_events

__all__ = ["ADD_OUTBOX_SQL", "SQLOutboxRepository", "outbox_params"]

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
        "now": utc_now() if now is None else now,
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
        id=as_uuid(row[0]),  # type: ignore[arg-type]
        event_id=as_uuid(row[1]),  # type: ignore[arg-type]
        event_type=row[2],
        aggregate_id=as_uuid(row[3]),  # type: ignore[arg-type]
        aggregate_type=row[4],
        tenant_id=as_uuid(row[5]),
        event_data=json_loads(row[6]),
        created_at=as_datetime(row[7]),  # type: ignore[arg-type]
        status=row[8],
        published_at=as_datetime(row[9]),
        retry_count=int(row[10]),
        last_error=row[11],
    )


@trace_methods(OUTBOX_SPANS)
class SQLOutboxRepository(TracingMixin):
    """Outbox rows in `event_outbox`, over a backend's executor.

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
        params = outbox_params(event)
        await self._db.execute(ADD_OUTBOX_SQL, params)
        return params["id"]  # type: ignore[return-value]

    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]:
        params: dict[str, object] = {"limit": limit}
        rows = await self._db.fetch(self._pending_sql[_outbox_scope(params)], params)
        return [_outbox_entry(row) for row in rows]

    async def get_publishable_events(self, limit: int = 100) -> list[OutboxEntry]:
        """Pending rows in insertion order, except those of aggregates with a failed row."""
        params: dict[str, object] = {"limit": limit}
        rows = await self._db.fetch(self._publishable_sql[_outbox_scope(params)], params)
        return [_outbox_entry(row) for row in rows]

    async def get_failed_events(self, limit: int = 100) -> list[OutboxEntry]:
        params: dict[str, object] = {"limit": limit}
        rows = await self._db.fetch(self._failed_sql[_outbox_scope(params)], params)
        return [_outbox_entry(row) for row in rows]

    async def mark_published(self, outbox_id: UUID) -> None:
        params: dict[str, object] = {"id": outbox_id, "now": utc_now()}
        await self._db.execute(_PUBLISHED[_outbox_scope(params)], params)

    async def mark_published_many(self, outbox_ids: Sequence[UUID]) -> int:
        """One UPDATE per 500 ids (one per relay batch of the default size)."""
        changed = 0
        now = utc_now()
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
        params: dict[str, object] = {"cutoff": utc_now() - timedelta(days=days)}
        return await self._db.execute(_CLEANUP[_outbox_scope(params)], params)

    async def get_stats(self) -> OutboxStats:
        params: dict[str, object] = {}
        [row] = await self._db.fetch(_OUTBOX_STATS[_outbox_scope(params)], params)
        return OutboxStats(
            pending_count=int(row[0]),
            published_count=int(row[1]),
            failed_count=int(row[2]),
            oldest_pending=as_datetime(row[3]),
            avg_retries=float(row[4]),
        )
