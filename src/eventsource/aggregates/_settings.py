"""What an aggregate repository was made with, kept once for the async and the sync one."""

from __future__ import annotations

from typing import Generic, TypeVar

from eventsource._attributes import ReadOnly
from eventsource.snapshots.strategies import SnapshotMode

TStore = TypeVar("TStore")
TSnapshots = TypeVar("TSnapshots")


class RepositorySettings(Generic[TStore, TSnapshots]):
    """The store, snapshot store and snapshot settings of a repository, read-only."""

    def _keep_settings(
        self,
        event_store: TStore,
        aggregate_type: str,
        snapshot_store: TSnapshots | None,
        snapshot_threshold: int | None,
        snapshot_mode: SnapshotMode,
    ) -> None:
        self._event_store = event_store
        self._aggregate_type = aggregate_type
        self._snapshot_store = snapshot_store
        self._snapshot_threshold = snapshot_threshold
        self._snapshot_mode: SnapshotMode = snapshot_mode

    aggregate_type: ReadOnly[str] = ReadOnly("_aggregate_type")
    """The aggregate type name the repository loads and saves."""
    event_store: ReadOnly[TStore] = ReadOnly("_event_store")
    """The event store the repository reads and appends through."""
    snapshot_store: ReadOnly[TSnapshots | None] = ReadOnly("_snapshot_store")
    """The snapshot store (None when the repository takes no snapshots)."""
    snapshot_threshold: ReadOnly[int | None] = ReadOnly("_snapshot_threshold")
    """A save that carries the version across a multiple of this snapshots (None: none)."""
    snapshot_mode: ReadOnly[SnapshotMode] = ReadOnly("_snapshot_mode")
    """How snapshots are written: "sync", "background" or "manual"."""

    @property
    def has_snapshot_support(self) -> bool:
        return self._snapshot_store is not None
