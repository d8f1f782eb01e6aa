"""Snapshot strategies: whether a save calls for a snapshot, and how it is written.

`AggregateRepository` turns its `snapshot_mode` and `snapshot_threshold` into one of these with
`create_snapshot_strategy` (as eventsource-py 0.2.0 did): "sync" writes the snapshot before
`save()` returns (`ThresholdSnapshotStrategy`), "background" in a tracked task
(`BackgroundSnapshotStrategy`), "manual" never by itself (`NoSnapshotStrategy`). Custom code may
use them directly; anything with the two methods of `SnapshotStrategy` is one.

The threshold rule: a snapshot is due when the events of a save
carried the version across a multiple of the threshold. For saves of one event that is "the
version is a multiple", 0.2.0's rule; a save that jumps over a multiple (0 -> 16 with threshold
10) snapshots here and did not there.

A snapshot that cannot be built or saved is logged and never fails the save that asked for it;
`AggregateRepository.create_snapshot` (manual snapshots) builds with `build_snapshot` and lets
errors through.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from eventsource.snapshots.interface import Snapshot, SnapshotStore

if TYPE_CHECKING:
    from eventsource.aggregates.base import AggregateRoot

__all__ = [
    "BackgroundSnapshotStrategy",
    "BaseSnapshotStrategy",
    "NoSnapshotStrategy",
    "SnapshotMode",
    "SnapshotStrategy",
    "ThresholdSnapshotStrategy",
    "build_snapshot",
    "create_snapshot_strategy",
]

logger = logging.getLogger(__name__)

SnapshotMode = Literal["sync", "background", "manual"]


@runtime_checkable
class SnapshotStrategy(Protocol):
    """Decides after a save whether to snapshot the aggregate, and writes the snapshot."""

    def should_snapshot(self, aggregate: AggregateRoot[Any], events_since_snapshot: int) -> bool:
        """True if the save that just stored `events_since_snapshot` events calls for one."""
        ...

    async def execute_snapshot(
        self, aggregate: AggregateRoot[Any], snapshot_store: SnapshotStore, aggregate_type: str
    ) -> Snapshot | None:
        """Write the snapshot; it, or None if it was not written (yet)."""
        ...


def build_snapshot(aggregate: AggregateRoot[Any], aggregate_type: str) -> Snapshot:
    """The aggregate as it is now: its version, its serialised state and its class's schema
    version (1 when the class declares none)."""
    return Snapshot(
        aggregate_id=aggregate.aggregate_id,
        aggregate_type=aggregate_type,
        version=aggregate.version,
        state=aggregate._serialize_state(),
        schema_version=getattr(type(aggregate), "schema_version", 1),
        created_at=datetime.now(UTC),
    )


def _built(aggregate: AggregateRoot[Any], aggregate_type: str) -> Snapshot | None:
    """`build_snapshot`, or None (logged) if the state cannot be serialised."""
    try:
        return build_snapshot(aggregate, aggregate_type)
    except Exception:
        logger.exception(
            "Serialising the state of %s %s for a snapshot failed",
            aggregate_type, aggregate.aggregate_id,
        )
        return None


async def _saved(snapshot_store: SnapshotStore, snapshot: Snapshot) -> bool:
    """Save `snapshot`; False (logged) if the store fails."""
    try:
        await snapshot_store.save_snapshot(snapshot)
    except Exception:
        logger.exception("Saving %s failed; the aggregate and its events are unaffected", snapshot)
        return False
    return True


def _checked(threshold: int | None) -> int | None:
    if threshold is not None and threshold < 1:
        raise ValueError(f"snapshot_threshold must be >= 1, got {threshold}")
    return threshold


class BaseSnapshotStrategy(ABC):
    """The threshold rule; subclasses decide how a snapshot is written."""

    def __init__(self, threshold: int | None = None) -> None:
        self._threshold = _checked(threshold)

    @property
    def threshold(self) -> int | None:
        """Events between snapshots; None: never automatically."""
        return self._threshold

    def should_snapshot(self, aggregate: AggregateRoot[Any], events_since_snapshot: int) -> bool:
        """True if the last `events_since_snapshot` events (those of the save just made)
        carried the aggregate's version across a multiple of the threshold."""
        threshold = self._threshold
        if threshold is None:
            return False
        version = aggregate.version
        return (version - events_since_snapshot) // threshold < version // threshold

    @abstractmethod
    async def execute_snapshot(
        self, aggregate: AggregateRoot[Any], snapshot_store: SnapshotStore, aggregate_type: str
    ) -> Snapshot | None:
        """Write a snapshot of the aggregate as it is now."""

    @property
    def pending_count(self) -> int:
        """Snapshots still being written in the background (only the background strategy
        has any)."""
        return 0

    async def await_pending(self) -> int:
        """Wait for the snapshots being written in the background; how many there were."""
        return 0


class ThresholdSnapshotStrategy(BaseSnapshotStrategy):
    """Writes the snapshot before returning (the repository's "sync" mode)."""

    async def execute_snapshot(
        self, aggregate: AggregateRoot[Any], snapshot_store: SnapshotStore, aggregate_type: str
    ) -> Snapshot | None:
        snapshot = _built(aggregate, aggregate_type)
        if snapshot is None or not await _saved(snapshot_store, snapshot):
            return None
        return snapshot


class BackgroundSnapshotStrategy(BaseSnapshotStrategy):
    """Builds the snapshot at once (the aggregate may change after the call) and saves it in a
    tracked task (the repository's "background" mode); `await_pending` waits for the tasks."""

    def __init__(self, threshold: int | None = None) -> None:
        super().__init__(threshold)
        self._pending: set[asyncio.Task[bool]] = set()

    async def execute_snapshot(
        self, aggregate: AggregateRoot[Any], snapshot_store: SnapshotStore, aggregate_type: str
    ) -> Snapshot | None:
        snapshot = _built(aggregate, aggregate_type)
        if snapshot is not None:
            task = asyncio.create_task(_saved(snapshot_store, snapshot))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return None

    @property
    def pending_count(self) -> int:
        return sum(1 for task in self._pending if not task.done())

    async def await_pending(self) -> int:
        pending = list(self._pending)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)


class NoSnapshotStrategy(BaseSnapshotStrategy):
    """Never snapshots by itself (the repository's "manual" mode)."""

    def __init__(self) -> None:
        super().__init__(None)

    def should_snapshot(self, aggregate: AggregateRoot[Any], events_since_snapshot: int) -> bool:
        return False

    async def execute_snapshot(
        self, aggregate: AggregateRoot[Any], snapshot_store: SnapshotStore, aggregate_type: str
    ) -> Snapshot | None:
        return None


_MODES: dict[str, type[BaseSnapshotStrategy]] = {
    "sync": ThresholdSnapshotStrategy,
    "background": BackgroundSnapshotStrategy,
}


def create_snapshot_strategy(
    mode: SnapshotMode, threshold: int | None = None
) -> BaseSnapshotStrategy:
    """The strategy of a repository `snapshot_mode` ("manual" checks the threshold, then
    ignores it)."""
    if mode == "manual":
        _checked(threshold)
        return NoSnapshotStrategy()
    strategy = _MODES.get(mode)
    if strategy is None:
        raise ValueError(f"snapshot_mode must be 'sync', 'background' or 'manual', got {mode!r}")
    return strategy(threshold)
