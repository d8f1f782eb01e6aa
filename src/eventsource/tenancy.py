"""Binding a tenant to a unit of work, so tenant-scoped code cannot forget the tenant.

Tenancy rides on `DomainEvent.tenant_id`. On top of that, code can bind the tenant
for a unit of work (a request, a message, a job) with `tenant_scope`:

    with tenant_scope(tenant_id):
        order = await repo.load(order_id)   # only tenant_id's events, snapshots, ...

The binding is a context variable, so it follows the task that set it and every task created
inside it, and never leaks into concurrent tasks. Inside a scope every bundled store,
repository, snapshot store, checkpoint repository and outbox repository reads only the bound
tenant's rows and stamps writes with it. Outside any scope they behave as without tenancy
(all tenants visible): operators and cross-tenant subscriptions run unscoped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING
from uuid import UUID

from eventsource.exceptions import TenantMismatchError, TenantRequiredError

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent

__all__ = ["current_tenant", "require_tenant", "tenant_scope"]

_bound_tenant: ContextVar[UUID | None] = ContextVar("eventsource_tenant", default=None)

# The store-side helpers below are not public API (they stay out of `__all__`).
bound_tenant: Callable[[], UUID | None] = _bound_tenant.get
"""The tenant bound by `tenant_scope`, or None: the ContextVar's own `get`, the cheapest call
there is, since every store call outside a scope pays it (and nothing else for tenancy)."""


def current_tenant() -> UUID | None:
    """The tenant bound to this unit of work, or None outside any `tenant_scope`."""
    return _bound_tenant.get()


def require_tenant() -> UUID:
    """The bound tenant; `TenantRequiredError` when code runs outside any `tenant_scope`."""
    tenant = _bound_tenant.get()
    if tenant is None:
        raise TenantRequiredError()
    return tenant


@contextmanager
def tenant_scope(tenant_id: UUID) -> Iterator[UUID]:
    """Bind `tenant_id` until the block ends (nesting rebinds, and restores on exit)."""
    if not isinstance(tenant_id, UUID):
        raise TypeError(f"tenant_scope needs a UUID tenant id, got {type(tenant_id).__name__}")
    token = _bound_tenant.set(tenant_id)
    try:
        yield tenant_id
    finally:
        _bound_tenant.reset(token)


def stamp_events(events: Sequence[DomainEvent], tenant: UUID) -> Sequence[DomainEvent]:
    """The events to store inside `tenant_scope(tenant)`: a tenant-less event becomes a copy
    stamped with `tenant`; an event of another tenant raises `TenantMismatchError` (naming the
    event, not its tenant) before anything is written. Events already carrying `tenant` are
    kept as they are, so a batch with nothing to stamp is returned unchanged."""
    stamped: list[DomainEvent] | None = None
    for index, event in enumerate(events):
        owner = event.tenant_id
        if owner is None:
            if stamped is None:
                stamped = list(events[:index])
            stamped.append(event.model_copy(update={"tenant_id": tenant}))
            continue
        if owner != tenant:
            raise TenantMismatchError(tenant, f"Event {event.event_id} ({event.event_type})")
        if stamped is not None:
            stamped.append(event)
    return events if stamped is None else stamped


def check_stream_owner(
    aggregate_id: UUID, aggregate_type: str, tenant: UUID, owner: UUID | None
) -> None:
    """Inside `tenant_scope(tenant)`, only the tenant's own streams may be appended to.

    A stream belongs to the tenant of its latest event (streams written inside a scope hold
    only that tenant's events). Appending to another tenant's stream, or to one whose latest
    event has no tenant, raises `TenantMismatchError` instead of forking the stream.
    """
    if owner != tenant:
        raise TenantMismatchError(tenant, f"Stream {aggregate_id}:{aggregate_type}")
