"""`InMemorySnapshotStore`."""

from __future__ import annotations

from uuid import UUID

from eventsource.exceptions import TenantMismatchError
from eventsource.observability.tracing import TracingMixin
from eventsource.snapshots.interface import Snapshot, SnapshotStore
from eventsource.tenancy import current_tenant

__all__ = ["InMemorySnapshotStore"]

Key = tuple[UUID, str]


class InMemorySnapshotStore(TracingMixin, SnapshotStore):
    """Snapshots in a dict: for tests and single-process apps.

    Tenancy follows the SQL stores (`snapshots/_sql.py`): the tenant bound when a snapshot was
    saved is kept beside it; inside a `tenant_scope` only that tenant's snapshots are visible.
    """

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._snapshots: dict[Key, Snapshot] = {}
        self._tenants: dict[Key, UUID] = {}  # owner of each snapshot saved inside a scope


    def _visible(self, key: Key, tenant: UUID | None) -> bool:
        return key in self._snapshots and (tenant is None or self._tenants.get(key) == tenant)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        key = (snapshot.aggregate_id, snapshot.aggregate_type)
        tenant = current_tenant()
        if tenant is not None:
            owner = self._tenants.get(key)
            if owner is not None and owner != tenant and key in self._snapshots:
                raise TenantMismatchError(tenant, f"The snapshot of {key[1]} {key[0]}")
            self._tenants[key] = tenant
        self._snapshots[key] = snapshot  # unscoped: replaces, keeping the owner

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        key = (aggregate_id, aggregate_type)
        tenant = current_tenant()
        if tenant is not None and self._tenants.get(key) != tenant:
            return None
        return self._snapshots.get(key)

    async def snapshot_exists(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return self._visible((aggregate_id, aggregate_type), current_tenant())

    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        key = (aggregate_id, aggregate_type)
        if not self._visible(key, current_tenant()):
            return False
        del self._snapshots[key]
        self._tenants.pop(key, None)
        return True

    async def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        tenant = current_tenant()
        doomed = [
            key
            for key, snap in self._snapshots.items()
            if snap.aggregate_type == aggregate_type
            and (schema_version_below is None or snap.schema_version < schema_version_below)
            and (tenant is None or self._tenants.get(key) == tenant)
        ]
        for key in doomed:
            del self._snapshots[key]
            self._tenants.pop(key, None)
        return len(doomed)

    async def clear(self) -> None:
        self._snapshots.clear()
        self._tenants.clear()

    @property
    def snapshot_count(self) -> int:
        return len(self._snapshots)
