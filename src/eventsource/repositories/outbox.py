"""The transactional outbox: events waiting to be published to other systems."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsource._ids import new_uuid4
from eventsource.events.base import DomainEvent
from eventsource.observability.attributes import ATTR_BATCH_SIZE, ATTR_EVENT_ID, ATTR_EVENT_TYPE
from eventsource.observability.tracing import TracingMixin, traced

__all__ = [
    "InMemoryOutboxRepository",
    "OutboxEntry",
    "OutboxRepository",
    "OutboxRepositoryProtocol",
    "OutboxStats",
    "outbox_event_data",
]


@dataclass(frozen=True)
class OutboxEntry:
    id: UUID
    event_id: UUID
    event_type: str
    aggregate_id: UUID
    aggregate_type: str
    tenant_id: UUID | None
    event_data: dict[str, Any]
    created_at: datetime
    status: str = "pending"
    published_at: datetime | None = None
    retry_count: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class OutboxStats:
    pending_count: int = 0
    published_count: int = 0
    failed_count: int = 0
    oldest_pending: datetime | None = None
    avg_retries: float = 0.0


def outbox_event_data(event: DomainEvent) -> dict[str, Any]:
    """What an outbox row carries (API.md §10): envelope fields and the full JSON dump."""
    return {
        "event_id": str(event.event_id),
        "aggregate_id": str(event.aggregate_id),
        "aggregate_type": event.aggregate_type,
        "tenant_id": str(event.tenant_id) if event.tenant_id else None,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": event.model_dump(mode="json"),
    }


@runtime_checkable
class OutboxRepository(Protocol):
    async def add_event(self, event: DomainEvent) -> UUID: ...

    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]: ...

    async def mark_published(self, outbox_id: UUID) -> None: ...

    async def mark_failed(self, outbox_id: UUID, error: str) -> None: ...

    async def increment_retry(self, outbox_id: UUID, error: str | None = None) -> None: ...

    async def cleanup_published(self, days: int = 7) -> int: ...

    async def get_stats(self) -> OutboxStats: ...


OutboxRepositoryProtocol = OutboxRepository


_ADD_ATTRIBUTES = {"event.event_id": ATTR_EVENT_ID, "event.event_type": ATTR_EVENT_TYPE}


class InMemoryOutboxRepository(TracingMixin):
    """Outbox rows in insertion order."""

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._rows: dict[UUID, OutboxEntry] = {}

    @traced("eventsource.outbox.add", arguments=_ADD_ATTRIBUTES)
    async def add_event(self, event: DomainEvent) -> UUID:
        outbox_id = new_uuid4()
        self._rows[outbox_id] = OutboxEntry(
            id=outbox_id,
            event_id=event.event_id,
            event_type=event.event_type,
            aggregate_id=event.aggregate_id,
            aggregate_type=event.aggregate_type,
            tenant_id=event.tenant_id,
            event_data=outbox_event_data(event),
            created_at=datetime.now(UTC),
        )
        return outbox_id

    @traced("eventsource.outbox.get_pending", arguments={"limit": ATTR_BATCH_SIZE})
    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]:
        return [row for row in self._rows.values() if row.status == "pending"][:limit]

    def _update(self, outbox_id: UUID, **changes: Any) -> None:
        row = self._rows.get(outbox_id)
        if row is not None:
            self._rows[outbox_id] = replace(row, **changes)

    @traced("eventsource.outbox.mark_published", arguments={"outbox_id": "eventsource.outbox.id"})
    async def mark_published(self, outbox_id: UUID) -> None:
        self._update(outbox_id, status="published", published_at=datetime.now(UTC))

    async def mark_failed(self, outbox_id: UUID, error: str) -> None:
        self._update(outbox_id, status="failed", last_error=error)

    async def increment_retry(self, outbox_id: UUID, error: str | None = None) -> None:
        row = self._rows.get(outbox_id)
        if row is not None:
            self._update(outbox_id, retry_count=row.retry_count + 1, last_error=error)

    async def cleanup_published(self, days: int = 7) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        doomed = [
            key
            for key, row in self._rows.items()
            if row.status == "published"
            and row.published_at is not None
            and row.published_at < cutoff
        ]
        for key in doomed:
            del self._rows[key]
        return len(doomed)

    async def get_stats(self) -> OutboxStats:
        rows = list(self._rows.values())
        pending = [r for r in rows if r.status == "pending"]
        return OutboxStats(
            pending_count=len(pending),
            published_count=sum(1 for r in rows if r.status == "published"),
            failed_count=sum(1 for r in rows if r.status == "failed"),
            oldest_pending=min((r.created_at for r in pending), default=None),
            avg_retries=sum(r.retry_count for r in rows) / len(rows) if rows else 0.0,
        )

    async def clear(self) -> None:
        self._rows.clear()


_BACKENDS = {  # API.md §10 lists this module as an import path of the SQL outboxes too
    "PostgreSQLOutboxRepository": "eventsource.repositories.postgresql",
    "SQLiteOutboxRepository": "eventsource.repositories.sqlite",
}


def __getattr__(name: str) -> Any:
    """The SQL outboxes, loaded on first use (importing this module needs no driver)."""
    module = _BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
