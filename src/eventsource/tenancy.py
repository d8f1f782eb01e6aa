"""Binding a tenant to a unit of work, so tenant-scoped code cannot forget the tenant.

Tenancy rides on `DomainEvent.tenant_id` (API.md §9). On top of that, code can bind the tenant
for a unit of work (a request, a message, a job) with `tenant_scope`:

    with tenant_scope(tenant_id):
        order = await repo.load(order_id)   # only tenant_id's events, snapshots, ...

The binding is a context variable, so it follows the task that set it and every task created
inside it, and never leaks into concurrent tasks. Inside a scope every bundled store,
repository, snapshot store, checkpoint repository and outbox repository reads only the bound
tenant's rows and stamps writes with it. Outside any scope they behave exactly as API.md says
(all tenants visible): operators and cross-tenant subscriptions run unscoped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from eventsource.exceptions import TenantRequiredError

__all__ = ["current_tenant", "require_tenant", "tenant_scope"]

_bound_tenant: ContextVar[UUID | None] = ContextVar("eventsource_tenant", default=None)


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
