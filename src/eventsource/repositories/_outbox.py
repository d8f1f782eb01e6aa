"""The transactional outbox: events waiting to be published to other systems.

A store with its outbox enabled writes one row per stored event in the append's transaction;
`OutboxRelay` (`eventsource.repositories.outbox_relay`) publishes the rows. Besides the
`OutboxRepository` protocol, the bundled repositories implement `RelayOutbox`:
what a relay needs to publish in order, in batches, and with one relay at a time.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsource._ids import new_uuid4
from eventsource.events.base import DomainEvent
from eventsource.observability.attributes import ATTR_BATCH_SIZE, ATTR_EVENT_ID, ATTR_EVENT_TYPE
from eventsource.observability.tracing import TracingMixin, trace_methods, traced
from eventsource.repositories._dict_access import DeprecatedDictAccess
from eventsource.tenancy import bound_tenant, stamp_events

__all__ = [
    "InMemoryOutboxRepository",
    "LocalRelayLock",
    "OutboxEntry",
    "OutboxRepository",
    "OutboxRepositoryProtocol",
    "OutboxStats",
    "RelayLock",
    "RelayOutbox",
    "outbox_event_data",
    "outbox_event_json",
]


@dataclass(frozen=True)
class OutboxEntry(DeprecatedDictAccess):
    """One outbox row. Reading it like a dict still works, deprecated."""

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
    """What an outbox row carries: envelope fields and the full JSON dump."""
    return {**_envelope(event, event.aggregate_id, event.aggregate_type),
            "payload": event.model_dump(mode="json")}


def outbox_event_json(
    event: DomainEvent, payload_json: str, aggregate_id: UUID, aggregate_type: str
) -> str:
    """`outbox_event_data` as JSON text, around the event's already encoded JSON dump (the
    payload is not dumped a second time)."""
    envelope = json.dumps(_envelope(event, aggregate_id, aggregate_type))
    return f'{envelope[:-1]}, "payload": {payload_json}}}'


def _envelope(event: DomainEvent, aggregate_id: UUID, aggregate_type: str) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "aggregate_id": str(aggregate_id),
        "aggregate_type": aggregate_type,
        "tenant_id": str(event.tenant_id) if event.tenant_id else None,
        "occurred_at": event.occurred_at.isoformat(),
    }


@runtime_checkable
class OutboxRepository(Protocol):
    """Rows written with the events they carry, for a relay to publish to a bus afterwards (at
    least once)."""

    async def add_event(self, event: DomainEvent) -> UUID: ...

    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]: ...

    async def mark_published(self, outbox_id: UUID) -> None: ...

    async def mark_failed(self, outbox_id: UUID, error: str) -> None: ...

    async def increment_retry(self, outbox_id: UUID, error: str | None = None) -> None: ...

    async def cleanup_published(self, days: int = 7) -> int: ...

    async def get_stats(self) -> OutboxStats: ...


OutboxRepositoryProtocol = OutboxRepository


@runtime_checkable
class RelayLock(Protocol):
    """Leadership among the relays of one outbox: at most one holds it at a time.

    `acquire()` never waits: True if this lock holds leadership now (taking it if free, or
    checking that it still holds it), False if another holder has it. `release()` gives it up
    (idempotent). A holder that dies loses it: the database session ends, the file closes.
    """

    async def acquire(self) -> bool: ...

    async def release(self) -> None: ...


@runtime_checkable
class RelayOutbox(OutboxRepository, Protocol):
    """What `OutboxRelay` uses beyond `OutboxRepository`; every bundled repository has it."""

    async def get_publishable_events(self, limit: int = 100) -> list[OutboxEntry]:
        """Pending rows in insertion order, except those of an aggregate that has a failed
        row (they wait until an operator requeues or removes it)."""

    async def mark_published_many(self, outbox_ids: Sequence[UUID]) -> int:
        """Mark rows published in one statement; the number of rows changed."""

    async def get_failed_events(self, limit: int = 100) -> list[OutboxEntry]:
        """Failed rows, oldest first."""

    async def requeue_failed(self, outbox_id: UUID | None = None) -> int:
        """Make a failed row (all failed rows if None) pending again with `retry_count` 0,
        releasing its aggregate; the number of rows requeued."""

    def relay_lock(self) -> RelayLock:
        """A new lock object for one relay (see `RelayLock`)."""


_local_leaders: dict[Hashable, LocalRelayLock] = {}


class LocalRelayLock:
    """Leadership among the relays of one process, keyed by what they share (an in-memory
    outbox, an SQLite `:memory:` database)."""

    def __init__(self, key: Hashable) -> None:
        self._key = key

    async def acquire(self) -> bool:
        holder = _local_leaders.setdefault(self._key, self)
        return holder is self

    async def release(self) -> None:
        if _local_leaders.get(self._key) is self:
            del _local_leaders[self._key]


_LIMIT = {"limit": ATTR_BATCH_SIZE}
_PUBLISHED = "eventsource.outbox.mark_published"


def _count_of_ids(
    _outbox: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, object]:
    ids = args[0] if args else kwargs["outbox_ids"]
    return {"eventsource.outbox.count": len(ids)}


OUTBOX_SPANS = {  # every outbox repository's spans
    "add_event": traced(
        "eventsource.outbox.add",
        arguments={"event.event_id": ATTR_EVENT_ID, "event.event_type": ATTR_EVENT_TYPE},
        once=True,
    ),
    "get_pending_events": traced("eventsource.outbox.get_pending", arguments=_LIMIT, once=True),
    "get_publishable_events": traced(
        "eventsource.outbox.get_pending", arguments=_LIMIT, once=True
    ),
    "mark_published": traced(
        _PUBLISHED, arguments={"outbox_id": "eventsource.outbox.id"}, once=True
    ),
    "mark_published_many": traced(_PUBLISHED, attributes_of=_count_of_ids, once=True),
}


@trace_methods(OUTBOX_SPANS)
class InMemoryOutboxRepository(TracingMixin):
    """Outbox rows in insertion order. Give it to `InMemoryEventStore(outbox=...)` to get a
    row per stored event, written in the append itself.

    Inside `tenant_scope(t)` every method reads and changes only t's rows, and `add_event`
    stamps a tenant-less event with t and refuses another tenant's (`TenantMismatchError`).
    """

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._rows: dict[UUID, OutboxEntry] = {}

    def _new_row(
        self, event: DomainEvent, aggregate_id: UUID, aggregate_type: str, now: datetime
    ) -> UUID:
        outbox_id = new_uuid4()
        data = outbox_event_data(event)
        data["aggregate_id"], data["aggregate_type"] = str(aggregate_id), aggregate_type
        self._rows[outbox_id] = OutboxEntry(
            id=outbox_id,
            event_id=event.event_id,
            event_type=event.event_type,
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            tenant_id=event.tenant_id,
            event_data=data,
            created_at=now,
        )
        return outbox_id

    async def add_event(self, event: DomainEvent) -> UUID:
        tenant = bound_tenant()
        if tenant is not None:
            [event] = stamp_events([event], tenant)
        return self._new_row(event, event.aggregate_id, event.aggregate_type, datetime.now(UTC))

    def add_appended(
        self, events: Iterable[DomainEvent], aggregate_id: UUID, aggregate_type: str
    ) -> None:
        """Rows for events an `InMemoryEventStore` has just stored, in the same synchronous
        step as the append (the store's stream is authoritative for the aggregate; the store
        has already stamped the events inside a `tenant_scope`)."""
        now = datetime.now(UTC)
        for event in events:
            self._new_row(event, aggregate_id, aggregate_type, now)

    def _scoped(self) -> list[OutboxEntry]:
        """Every row, or inside a scope the bound tenant's."""
        tenant = bound_tenant()
        if tenant is None:
            return list(self._rows.values())
        return [row for row in self._rows.values() if row.tenant_id == tenant]

    def _get(self, outbox_id: UUID) -> OutboxEntry | None:
        row = self._rows.get(outbox_id)
        tenant = bound_tenant()
        return row if row is not None and tenant in (None, row.tenant_id) else None

    async def get_pending_events(self, limit: int = 100) -> list[OutboxEntry]:
        return [row for row in self._scoped() if row.status == "pending"][:limit]

    async def get_publishable_events(self, limit: int = 100) -> list[OutboxEntry]:
        rows = self._scoped()
        held = {(r.aggregate_id, r.aggregate_type) for r in rows if r.status == "failed"}
        return [
            row
            for row in rows
            if row.status == "pending" and (row.aggregate_id, row.aggregate_type) not in held
        ][:limit]

    async def mark_published_many(self, outbox_ids: Sequence[UUID]) -> int:
        now = datetime.now(UTC)
        changed = 0
        for outbox_id in outbox_ids:
            if self._get(outbox_id) is not None:
                self._update(outbox_id, status="published", published_at=now)
                changed += 1
        return changed

    async def get_failed_events(self, limit: int = 100) -> list[OutboxEntry]:
        return [row for row in self._scoped() if row.status == "failed"][:limit]

    async def requeue_failed(self, outbox_id: UUID | None = None) -> int:
        chosen = [
            row.id
            for row in self._scoped()
            if row.status == "failed" and (outbox_id is None or row.id == outbox_id)
        ]
        for key in chosen:
            self._update(key, status="pending", retry_count=0)
        return len(chosen)

    def relay_lock(self) -> RelayLock:
        return LocalRelayLock(self)

    def _update(self, outbox_id: UUID, **changes: Any) -> None:
        row = self._get(outbox_id)
        if row is not None:
            self._rows[outbox_id] = replace(row, **changes)

    async def mark_published(self, outbox_id: UUID) -> None:
        self._update(outbox_id, status="published", published_at=datetime.now(UTC))

    async def mark_failed(self, outbox_id: UUID, error: str) -> None:
        self._update(outbox_id, status="failed", last_error=error)

    async def increment_retry(self, outbox_id: UUID, error: str | None = None) -> None:
        row = self._get(outbox_id)
        if row is not None:
            self._update(outbox_id, retry_count=row.retry_count + 1, last_error=error)

    async def cleanup_published(self, days: int = 7) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        doomed = [
            row.id
            for row in self._scoped()
            if row.status == "published"
            and row.published_at is not None
            and row.published_at < cutoff
        ]
        for key in doomed:
            del self._rows[key]
        return len(doomed)

    async def get_stats(self) -> OutboxStats:
        rows = self._scoped()
        pending = [r for r in rows if r.status == "pending"]
        return OutboxStats(
            pending_count=len(pending),
            published_count=sum(1 for r in rows if r.status == "published"),
            failed_count=sum(1 for r in rows if r.status == "failed"),
            oldest_pending=min((r.created_at for r in pending), default=None),
            avg_retries=sum(r.retry_count for r in rows) / len(rows) if rows else 0.0,
        )

    async def clear(self) -> None:
        """Forget every row (inside a `tenant_scope`: the bound tenant's)."""
        if bound_tenant() is None:
            self._rows.clear()
            return
        for row in self._scoped():
            del self._rows[row.id]
