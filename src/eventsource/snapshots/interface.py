"""`Snapshot` and the `SnapshotStore` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

__all__ = ["Snapshot", "SnapshotStore"]


@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state at `version`, as a JSON-mode dict of its state model."""

    aggregate_id: UUID
    aggregate_type: str
    version: int
    state: dict[str, Any]
    schema_version: int
    created_at: datetime

    def __str__(self) -> str:
        return (
            f"Snapshot({self.aggregate_type}/{self.aggregate_id}, v{self.version}, "
            f"schema_v{self.schema_version})"
        )


class SnapshotStore(ABC):
    """At most one snapshot per `(aggregate_id, aggregate_type)`; saving replaces it."""

    @abstractmethod
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Insert or replace the aggregate's snapshot."""

    @abstractmethod
    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        """The snapshot, or None."""

    @abstractmethod
    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        """True if a snapshot was deleted."""

    async def snapshot_exists(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return await self.get_snapshot(aggregate_id, aggregate_type) is not None

    async def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        """Delete every snapshot of a type (only older schema versions if given)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement this")
