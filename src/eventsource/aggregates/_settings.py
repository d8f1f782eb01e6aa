"""What an aggregate repository was made with, kept once for the async and the sync one."""

from __future__ import annotations

from typing import Generic, TypeVar

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

    @property
    def aggregate_type(self) -> str:
        return self._aggregate_type

    @property
    def event_store(self) -> TStore:
        return self._event_store

    @property
    def snapshot_store(self) -> TSnapshots | None:
        return self._snapshot_store

    @property
    def snapshot_threshold(self) -> int | None:
        return self._snapshot_threshold

    @property
    def snapshot_mode(self) -> SnapshotMode:
        return self._snapshot_mode

    @property
    def has_snapshot_support(self) -> bool:
        return self._snapshot_store is not None
