"""`InMemorySnapshotStore`."""

from __future__ import annotations

from uuid import UUID

from eventsource.observability.tracing import TracingMixin
from eventsource.snapshots.interface import Snapshot, SnapshotStore

__all__ = ["InMemorySnapshotStore"]


class InMemorySnapshotStore(TracingMixin, SnapshotStore):
    """Snapshots in a dict: for tests and single-process apps."""

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._snapshots: dict[tuple[UUID, str], Snapshot] = {}

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshots[(snapshot.aggregate_id, snapshot.aggregate_type)] = snapshot

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        return self._snapshots.get((aggregate_id, aggregate_type))

    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return self._snapshots.pop((aggregate_id, aggregate_type), None) is not None

    async def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        doomed = [
            key for key, snap in self._snapshots.items()
            if snap.aggregate_type == aggregate_type
            and (schema_version_below is None or snap.schema_version < schema_version_below)
        ]
        for key in doomed:
            del self._snapshots[key]
        return len(doomed)

    async def clear(self) -> None:
        self._snapshots.clear()

    @property
    def snapshot_count(self) -> int:
        return len(self._snapshots)
