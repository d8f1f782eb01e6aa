"""The dead-letter queue: events a projection could not handle, kept with their error.

Tenancy. `dead_letter_queue` rows have no tenant column; they belong to the tenant of the
failed event, which their `event_data` (the event's JSON dump) carries as `tenant_id`. Inside
`tenant_scope(t)` every method reads, counts, changes and deletes only rows whose event is
t's, and `add_failed_event` stamps event data without a tenant with t, and refuses the event
of another tenant (`TenantMismatchError`, nothing written). So a dead letter written by a
projection that runs unscoped (across tenants) is still visible to its event's tenant. Rows
whose event data has no tenant are seen only outside any scope.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from eventsource.exceptions import TenantMismatchError
from eventsource.observability.attributes import (
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_PROJECTION_NAME,
    ATTR_RETRY_COUNT,
)
from eventsource.observability.tracing import TracingMixin, trace_methods, traced
from eventsource.repositories._dict_access import DeprecatedDictAccess
from eventsource.tenancy import bound_tenant

__all__ = [
    "DLQEntry",
    "DLQRepository",
    "DLQRepositoryProtocol",
    "DLQStats",
    "InMemoryDLQRepository",
    "ProjectionFailureCount",
]


@dataclass
class DLQEntry(DeprecatedDictAccess):
    """One failed (event, projection) pair. Reading it like a dict still works, deprecated."""

    id: int | str
    event_id: UUID
    projection_name: str
    event_type: str
    event_data: str | dict[str, Any]
    error_message: str
    error_stacktrace: str | None = None
    retry_count: int = 0
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    status: str = "failed"
    resolved_at: datetime | None = None
    resolved_by: str | None = None


@dataclass(frozen=True)
class DLQStats:
    total_failed: int = 0
    total_retrying: int = 0
    affected_projections: int = 0
    oldest_failure: str | None = None


@dataclass(frozen=True)
class ProjectionFailureCount:
    projection_name: str
    failure_count: int = 0
    oldest_failure: str | None = None
    most_recent_failure: str | None = None


@runtime_checkable
class DLQRepository(Protocol):
    """Where subscriptions and projections park events that kept failing, with the error, until
    retried or resolved."""

    async def add_failed_event(
        self,
        event_id: UUID,
        projection_name: str,
        event_type: str,
        event_data: dict[str, Any],
        error: Exception,
        retry_count: int = 0,
    ) -> None: ...

    async def get_failed_events(
        self, projection_name: str | None = None, status: str = "failed", limit: int = 100
    ) -> list[DLQEntry]: ...

    async def get_failed_event_by_id(self, dlq_id: int | str) -> DLQEntry | None: ...

    async def mark_resolved(self, dlq_id: int | str, resolved_by: str | UUID) -> None: ...

    async def mark_retrying(self, dlq_id: int | str) -> None: ...

    async def get_failure_stats(self) -> DLQStats: ...

    async def get_projection_failure_counts(self) -> list[ProjectionFailureCount]: ...

    async def delete_resolved_events(self, older_than_days: int = 30) -> int: ...


_DLQ_ID = {"dlq_id": "eventsource.dlq.id"}
DLQ_SPANS = {  # every dead-letter repository's spans
    "add_failed_event": traced(
        "eventsource.dlq.add",
        arguments={
            "event_id": ATTR_EVENT_ID,
            "projection_name": ATTR_PROJECTION_NAME,
            "event_type": ATTR_EVENT_TYPE,
            "retry_count": ATTR_RETRY_COUNT,
        },
        once=True,
    ),
    "get_failed_events": traced(
        "eventsource.dlq.get",
        arguments={"projection_name": ATTR_PROJECTION_NAME, "status": "eventsource.dlq.status"},
        once=True,
    ),
    "mark_resolved": traced("eventsource.dlq.resolve", arguments=_DLQ_ID, once=True),
    "mark_retrying": traced("eventsource.dlq.retry", arguments=_DLQ_ID, once=True),
}


def scoped_event_data(
    event_data: dict[str, Any], tenant: UUID, event_id: UUID, projection_name: str
) -> dict[str, Any]:
    """The event data to store inside `tenant_scope(tenant)`: stamped with the tenant when it
    has none; `TenantMismatchError` when it names another tenant."""
    given = event_data.get("tenant_id")
    if given is None:
        return {**event_data, "tenant_id": str(tenant)}
    if str(given) != str(tenant):
        raise _refused(tenant, event_id, projection_name)
    return event_data


def _refused(tenant: UUID, event_id: UUID, projection_name: str) -> TenantMismatchError:
    return TenantMismatchError(tenant, f"Dead letter of event {event_id} for {projection_name}")


def tenant_of_event_data(event_data: object) -> str | None:
    """The tenant id (as text) a dead letter's event data names, if any."""
    if isinstance(event_data, str):
        try:
            event_data = json.loads(event_data)
        except ValueError:
            return None
    if not isinstance(event_data, dict):
        return None
    tenant = event_data.get("tenant_id")
    return None if tenant is None else str(tenant)


def stacktrace_of(error: BaseException) -> str | None:
    """The formatted traceback of `error`, or None if it was never raised."""
    if error.__traceback__ is None:
        return None
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


class FailedEvent(NamedTuple):
    """An event to dead-letter, as `add_failed_event` got it (its data scoped to the tenant)."""

    event_id: UUID
    projection_name: str
    event_type: str
    event_data: dict[str, Any]
    error: Exception
    retry_count: int


@trace_methods(DLQ_SPANS)
class DeadLetterIntake(TracingMixin):
    """`add_failed_event`, written once for the dead-letter repositories: inside a tenant scope
    the event data is stamped with the tenant, and another tenant's dead letter is refused."""

    async def add_failed_event(
        self,
        event_id: UUID,
        projection_name: str,
        event_type: str,
        event_data: dict[str, Any],
        error: Exception,
        retry_count: int = 0,
    ) -> None:
        """Dead-letter the event with `error`, or update its dead letter for this projection."""
        tenant = bound_tenant()
        if tenant is not None:
            event_data = scoped_event_data(event_data, tenant, event_id, projection_name)
        failed = FailedEvent(event_id, projection_name, event_type, event_data, error, retry_count)
        if not await self._park(failed, tenant) and tenant is not None:
            raise _refused(tenant, event_id, projection_name)

    async def _park(self, failed: FailedEvent, tenant: UUID | None) -> bool:
        """Insert the dead letter, or update the one of its event and projection; False (and
        nothing written) if that one is not visible to `tenant`."""
        raise NotImplementedError


@trace_methods(DLQ_SPANS)
class InMemoryDLQRepository(DeadLetterIntake):
    """Dead letters in a dict, ids from 1; scoped by the event's tenant (see the module)."""

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._entries: dict[int, DLQEntry] = {}
        self._by_key: dict[tuple[UUID, str], int] = {}
        self._next_id = 1

    async def _park(self, failed: FailedEvent, tenant: UUID | None) -> bool:
        now = datetime.now(UTC)
        key = (failed.event_id, failed.projection_name)
        existing = self._by_key.get(key)
        if existing is not None:
            entry = self._entries[existing]
            if not self._visible(entry, tenant):
                return False
            self._entries[existing] = replace(
                entry,
                retry_count=failed.retry_count,
                error_message=str(failed.error),
                error_stacktrace=stacktrace_of(failed.error),
                last_failed_at=now,
                status="failed",
            )
            return True
        dlq_id = self._next_id
        self._next_id += 1
        self._by_key[key] = dlq_id
        self._entries[dlq_id] = DLQEntry(
            id=dlq_id,
            event_id=failed.event_id,
            projection_name=failed.projection_name,
            event_type=failed.event_type,
            event_data=failed.event_data,
            error_message=str(failed.error),
            error_stacktrace=stacktrace_of(failed.error),
            retry_count=failed.retry_count,
            first_failed_at=now,
            last_failed_at=now,
        )
        return True

    async def get_failed_events(
        self, projection_name: str | None = None, status: str = "failed", limit: int = 100
    ) -> list[DLQEntry]:
        found = [
            e
            for e in self._scoped()
            if e.status == status
            and (projection_name is None or e.projection_name == projection_name)
        ]
        found.sort(
            key=lambda e: (e.first_failed_at or datetime.min.replace(tzinfo=UTC), e.id),
            reverse=True,
        )
        return found[:limit]

    def _visible(self, entry: DLQEntry, tenant: UUID | None) -> bool:
        return tenant is None or tenant_of_event_data(entry.event_data) == str(tenant)

    def _scoped(self) -> list[DLQEntry]:
        """Every entry, or inside a scope the bound tenant's."""
        tenant = bound_tenant()
        return [e for e in self._entries.values() if self._visible(e, tenant)]

    def _get(self, dlq_id: int | str) -> DLQEntry | None:
        entry = self._entries.get(int(dlq_id))
        return entry if entry is not None and self._visible(entry, bound_tenant()) else None

    async def get_failed_event_by_id(self, dlq_id: int | str) -> DLQEntry | None:
        return self._get(dlq_id)

    async def mark_resolved(self, dlq_id: int | str, resolved_by: str | UUID) -> None:
        entry = self._get(dlq_id)
        if entry is not None:
            self._entries[entry.id] = replace(  # type: ignore[index]
                entry,
                status="resolved",
                resolved_at=datetime.now(UTC),
                resolved_by=str(resolved_by),
            )

    async def mark_retrying(self, dlq_id: int | str) -> None:
        entry = self._get(dlq_id)
        if entry is not None:
            self._entries[entry.id] = replace(entry, status="retrying")  # type: ignore[index]

    async def get_failure_stats(self) -> DLQStats:
        open_entries = [e for e in self._scoped() if e.status in ("failed", "retrying")]
        oldest = min((e.first_failed_at for e in open_entries if e.first_failed_at), default=None)
        return DLQStats(
            total_failed=sum(1 for e in open_entries if e.status == "failed"),
            total_retrying=sum(1 for e in open_entries if e.status == "retrying"),
            affected_projections=len({e.projection_name for e in open_entries}),
            oldest_failure=oldest.isoformat() if oldest else None,
        )

    async def get_projection_failure_counts(self) -> list[ProjectionFailureCount]:
        groups: dict[str, list[DLQEntry]] = {}
        for entry in self._scoped():
            if entry.status in ("failed", "retrying"):
                groups.setdefault(entry.projection_name, []).append(entry)
        counts = []
        for name, entries in groups.items():
            stamps = [e.first_failed_at for e in entries if e.first_failed_at]
            last = [e.last_failed_at for e in entries if e.last_failed_at]
            counts.append(
                ProjectionFailureCount(
                    projection_name=name,
                    failure_count=len(entries),
                    oldest_failure=min(stamps).isoformat() if stamps else None,
                    most_recent_failure=max(last).isoformat() if last else None,
                )
            )
        counts.sort(key=lambda c: (-c.failure_count, c.projection_name))
        return counts

    async def delete_resolved_events(self, older_than_days: int = 30) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
        doomed = [
            e
            for e in self._scoped()
            if e.status == "resolved" and e.resolved_at is not None and e.resolved_at < cutoff
        ]
        for entry in doomed:
            del self._entries[entry.id]  # type: ignore[arg-type]
            self._by_key.pop((entry.event_id, entry.projection_name), None)
        return len(doomed)

    async def clear(self) -> None:
        """Forget every entry (inside a `tenant_scope`: the bound tenant's)."""
        if bound_tenant() is not None:
            for entry in self._scoped():
                del self._entries[entry.id]  # type: ignore[arg-type]
                self._by_key.pop((entry.event_id, entry.projection_name), None)
            return
        self._entries.clear()
        self._by_key.clear()
        self._next_id = 1


DLQRepositoryProtocol = DLQRepository
