"""`SyncAggregateRepository`: load and save aggregates from synchronous code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsource.aggregates._settings import RepositorySettings
from eventsource.aggregates.base import AggregateRoot
from eventsource.aggregates.repository import AggregateRepository
from eventsource.snapshots.interface import Snapshot
from eventsource.snapshots.strategies import SnapshotMode, create_snapshot_strategy
from eventsource.stores.interface import EventPublisher
from eventsource.sync._bound import Factory, PortalBound, construct
from eventsource.sync.exceptions import SyncConfigurationError
from eventsource.sync.snapshots import SyncSnapshotStore
from eventsource.sync.store import SyncEventStore

__all__ = ["SyncAggregateRepository"]

TAggregate = TypeVar("TAggregate", bound=AggregateRoot[Any])


class SyncAggregateRepository(
    PortalBound[AggregateRepository[TAggregate]],
    RepositorySettings[SyncEventStore, SyncSnapshotStore],
    Generic[TAggregate],
):
    """`AggregateRepository` as blocking calls, usable from any thread: the same arguments,
    methods and errors (`OptimisticLockError` on a stale save, `AggregateNotFoundError`),
    over a `SyncEventStore` (and a `SyncSnapshotStore`) on the same portal.

    Aggregates themselves are plain objects, changed in the caller's thread; the loads and
    saves run on the portal. `event_publisher` is a factory too (run on the portal), since a
    broker bus's connection belongs to the loop that opened it; the repository publishes to
    what it returns and does not close it.
    """

    def __init__(
        self,
        event_store: SyncEventStore,
        aggregate_factory: Callable[[UUID], TAggregate],
        aggregate_type: str,
        event_publisher: Factory[EventPublisher] | None = None,
        snapshot_store: SyncSnapshotStore | None = None,
        snapshot_threshold: int | None = None,
        snapshot_mode: SnapshotMode = "sync",
        enable_tracing: bool = True,
    ) -> None:
        if not isinstance(event_store, SyncEventStore):
            raise SyncConfigurationError(
                f"SyncAggregateRepository needs a SyncEventStore, got "
                f"{type(event_store).__name__}: e.g. SyncEventStore.sqlite('app.db')"
            )
        if snapshot_store is not None and not isinstance(snapshot_store, SyncSnapshotStore):
            raise SyncConfigurationError(
                f"snapshot_store must be a SyncSnapshotStore, got {type(snapshot_store).__name__}"
            )
        if snapshot_store is not None and snapshot_store.portal is not event_store.portal:
            raise SyncConfigurationError(
                f"{snapshot_store!r} runs on {snapshot_store.portal!r}, {event_store!r} on "
                f"{event_store.portal!r}: a repository's stores must share one portal"
            )
        if event_publisher is not None and not callable(event_publisher):
            raise SyncConfigurationError(
                f"event_publisher must be a factory run on the portal (e.g. lambda: bus), "
                f"got a {type(event_publisher).__name__}"
            )
        create_snapshot_strategy(snapshot_mode, snapshot_threshold)  # checks both, now
        self._keep_settings(
            event_store, aggregate_type, snapshot_store, snapshot_threshold, snapshot_mode
        )
        self._aggregate_factory = aggregate_factory

        async def build() -> AggregateRepository[TAggregate]:
            publisher = None
            if event_publisher is not None:
                publisher = await construct(event_publisher, EventPublisher, "event_publisher")
            return AggregateRepository(
                await event_store._resolve(),
                aggregate_factory,
                aggregate_type,
                publisher,
                await snapshot_store._resolve() if snapshot_store is not None else None,
                snapshot_threshold,
                snapshot_mode,
                enable_tracing,
            )

        self._setup(
            build,
            _finish_snapshots,
            event_store.portal,
            f"SyncAggregateRepository({aggregate_type!r})",
        )

    def create_new(self, aggregate_id: UUID) -> TAggregate:
        """A fresh aggregate (version 0, no state), made in the caller's thread; nothing is
        stored."""
        return self._aggregate_factory(aggregate_id)

    def load(self, aggregate_id: UUID) -> TAggregate:
        """The aggregate rebuilt from its snapshot and events; `AggregateNotFoundError` if
        there is neither."""
        return self.run(lambda repo: repo.load(aggregate_id))

    def load_or_create(self, aggregate_id: UUID) -> TAggregate:
        return self.run(lambda repo: repo.load_or_create(aggregate_id))

    def get_or_raise(self, aggregate_id: UUID) -> TAggregate:
        return self.run(lambda repo: repo.load(aggregate_id))

    def save(self, aggregate: TAggregate) -> None:
        """Append the aggregate's uncommitted events atomically (`OptimisticLockError` when
        its stream moved on since the load: load again, redo the command, save again)."""
        if not aggregate.has_uncommitted_events:  # nothing to do: no hop
            return
        self.run(lambda repo: repo.save(aggregate))

    def exists(self, aggregate_id: UUID) -> bool:
        return self.run(lambda repo: repo.exists(aggregate_id))

    def get_version(self, aggregate_id: UUID) -> int:
        return self.run(lambda repo: repo.get_version(aggregate_id))

    def create_snapshot(self, aggregate: TAggregate) -> Snapshot:
        """Build and save a snapshot now (`RuntimeError` without a snapshot store)."""
        return self.run(lambda repo: repo.create_snapshot(aggregate))

    def await_pending_snapshots(self) -> int:
        """Wait for the snapshots `snapshot_mode="background"` is still taking; how many."""
        return self.run(lambda repo: repo.await_pending_snapshots())

    @property
    def pending_snapshot_count(self) -> int:
        return self.run(_pending_count)


async def _pending_count(repo: AggregateRepository[Any]) -> int:
    return repo.pending_snapshot_count


async def _finish_snapshots(repo: AggregateRepository[Any]) -> None:
    """On close: background snapshots finish before the snapshot store closes."""
    await repo.await_pending_snapshots()
