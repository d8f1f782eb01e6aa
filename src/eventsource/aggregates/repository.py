"""`AggregateRepository`: load aggregates from an event store and save their new events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsource.aggregates._settings import RepositorySettings
from eventsource.aggregates.base import AggregateRoot
from eventsource.events.base import DomainEvent
from eventsource.evolution.snapshots import record_discarded, upgrade_snapshot
from eventsource.evolution.upcasting import upcasters_for
from eventsource.exceptions import AggregateNotFoundError
from eventsource.observability.attributes import (
    ATTR_AGGREGATE_ID,
    ATTR_AGGREGATE_TYPE,
    ATTR_EVENT_COUNT,
    ATTR_EXPECTED_VERSION,
    ATTR_VERSION,
)
from eventsource.observability.tracing import TracingMixin
from eventsource.snapshots.interface import Snapshot, SnapshotStore
from eventsource.snapshots.strategies import SnapshotMode, build_snapshot, create_snapshot_strategy
from eventsource.stores.interface import EventPublisher, EventStore, EventStream
from eventsource.tenancy import bound_tenant, stamp_events

__all__ = ["AggregateRepository", "SnapshotMode"]

logger = logging.getLogger(__name__)

TAggregate = TypeVar("TAggregate", bound=AggregateRoot[Any])

# Span attributes under eventsource-py 0.2.0's names: what a load started from and replayed,
# and what `exists` found.
SNAPSHOT_USED = "snapshot.used"
SNAPSHOT_VERSION = "snapshot.version"
EVENTS_REPLAYED = "events.replayed"
EXISTS = "exists"


class AggregateRepository(
    TracingMixin, RepositorySettings[EventStore, SnapshotStore], Generic[TAggregate]
):
    """Loads aggregates by replaying their stream (from a snapshot when there is one) and saves
    their uncommitted events with the aggregate's version as the expected version."""

    def __init__(
        self,
        event_store: EventStore,
        aggregate_factory: Callable[[UUID], TAggregate],
        aggregate_type: str,
        event_publisher: EventPublisher | None = None,
        snapshot_store: SnapshotStore | None = None,
        snapshot_threshold: int | None = None,
        snapshot_mode: SnapshotMode = "sync",
        enable_tracing: bool = True,
    ) -> None:
        # When and how saves snapshot (eventsource.snapshots.strategies); checks both settings.
        self._strategy = create_snapshot_strategy(snapshot_mode, snapshot_threshold)
        self._init_tracing(__name__, enable_tracing)
        self._keep_settings(
            event_store, aggregate_type, snapshot_store, snapshot_threshold, snapshot_mode
        )
        self._factory = aggregate_factory
        self._publisher = event_publisher

    @property
    def event_publisher(self) -> EventPublisher | None:
        return self._publisher

    @property
    def pending_snapshot_count(self) -> int:
        return self._strategy.pending_count

    def create_new(self, aggregate_id: UUID) -> TAggregate:
        """A fresh aggregate (version 0, no state); nothing is stored."""
        return self._factory(aggregate_id)

    async def load(self, aggregate_id: UUID) -> TAggregate:
        """The aggregate rebuilt from its snapshot and events; AggregateNotFoundError if none."""
        if not self._tracing_live():
            return await self._load(aggregate_id)
        with self._create_span_context(
            "eventsource.repository.load",
            {ATTR_AGGREGATE_ID: aggregate_id, ATTR_AGGREGATE_TYPE: self._aggregate_type},
        ) as current:
            aggregate = await self._load(aggregate_id, current)
            if current is not None:
                current.set_attribute(ATTR_VERSION, aggregate.version)
            return aggregate

    async def _load(self, aggregate_id: UUID, span: Any = None) -> TAggregate:
        """`load`; with a (recording) span, also says on it where the load started from."""
        aggregate = self._factory(aggregate_id)
        snapshot, outdated = await self._usable_snapshot(aggregate, aggregate_id)
        if snapshot is not None and snapshot.version > 0 and bound_tenant() is not None:
            snapshot, stream = await self._tenant_checked(aggregate_id, snapshot)
        else:
            from_version = snapshot.version if snapshot is not None else 0
            stream = await self._event_store.get_events(
                aggregate_id, self._aggregate_type, from_version=from_version
            )
        if snapshot is None and not stream.events:
            raise AggregateNotFoundError(aggregate_id, self._aggregate_type)
        if snapshot is not None:
            try:
                aggregate._restore_from_snapshot(snapshot.state, snapshot.schema_version)
                aggregate._version = snapshot.version
            except Exception:
                logger.warning(
                    "Snapshot of %s %s at v%d could not be restored; replaying all events",
                    self._aggregate_type, aggregate_id, snapshot.version, exc_info=True,
                )
                # Never half-applied: whatever the failed restore set dies with that instance.
                aggregate, outdated, snapshot = self._factory(aggregate_id), True, None
                stream = await self._event_store.get_events(aggregate_id, self._aggregate_type)
                if not stream.events:
                    raise AggregateNotFoundError(aggregate_id, self._aggregate_type) from None
        aggregate.load_from_history(stream.events)
        if span is not None:
            span.set_attribute(SNAPSHOT_USED, snapshot is not None)
            if snapshot is not None:
                span.set_attribute(SNAPSHOT_VERSION, snapshot.version)
            span.set_attribute(EVENTS_REPLAYED, len(stream.events))
        if outdated:
            await self._refresh_snapshot(aggregate)
        return aggregate

    async def _tenant_checked(
        self, aggregate_id: UUID, snapshot: Snapshot
    ) -> tuple[Snapshot | None, EventStream]:
        """Inside a `tenant_scope`: use the snapshot only if the bound tenant itself has the
        event at the snapshot's version, so a snapshot store that does not scope by tenant
        cannot hand over another tenant's state. Reads that one extra event instead of making
        an extra call; without it, falls back to a full (tenant-scoped) replay."""
        stream = await self._event_store.get_events(
            aggregate_id, self._aggregate_type, from_version=snapshot.version - 1
        )
        events = stream.events
        if events and stream.version - len(events) + 1 == snapshot.version:
            # Positions snapshot.version .. stream.version, contiguous: skip the covered one.
            return snapshot, EventStream(
                aggregate_id, stream.aggregate_type, events[1:], stream.version
            )
        logger.info(
            "Ignoring snapshot of %s %s at v%d: the bound tenant has no event at that version",
            self._aggregate_type, aggregate_id, snapshot.version,
        )
        return None, await self._event_store.get_events(aggregate_id, self._aggregate_type)

    async def _usable_snapshot(
        self, aggregate: TAggregate, aggregate_id: UUID
    ) -> tuple[Snapshot | None, bool]:
        """The snapshot to start from, and whether a stored one is outdated (an older schema
        version nobody can read): the load then replaces it."""
        if self._snapshot_store is None:
            return None, False
        try:
            snapshot = await self._snapshot_store.get_snapshot(aggregate_id, self._aggregate_type)
        except Exception:
            logger.warning("Snapshot read failed for %s", aggregate_id, exc_info=True)
            return None, False
        if snapshot is None:
            return None, False
        expected = getattr(type(aggregate), "schema_version", 1)
        if snapshot.schema_version == expected:
            return snapshot, False
        return self._other_schema(aggregate, aggregate_id, snapshot, expected)

    def _other_schema(
        self, aggregate: TAggregate, aggregate_id: UUID, snapshot: Snapshot, expected: int
    ) -> tuple[Snapshot | None, bool]:
        """`_usable_snapshot` for a snapshot of another schema version: upgraded by snapshot
        upcasters, else restored by the aggregate's own `_restore_from_snapshot`, else
        discarded (and counted)."""
        if snapshot.schema_version < expected:
            registry = getattr(self._event_store, "event_registry", None)
            upgraded = upgrade_snapshot(snapshot, expected, upcasters_for(registry))
            if upgraded is not None:
                return upgraded, False
        overrides = (
            type(aggregate)._restore_from_snapshot is not AggregateRoot._restore_from_snapshot
        )
        if snapshot.schema_version < expected and overrides:
            return snapshot, False
        record_discarded(self._aggregate_type)
        logger.info(
            "Ignoring snapshot of %s %s: schema version %d, aggregate expects %d",
            self._aggregate_type, aggregate_id, snapshot.schema_version, expected,
        )
        # A newer schema version is left alone: during a rolling deploy the new code reads it.
        return None, snapshot.schema_version < expected

    async def _refresh_snapshot(self, aggregate: TAggregate) -> None:
        """After a full replay that had to ignore an outdated or unreadable snapshot, replace
        it now, so the next loads are fast again: when the policy would have snapshotted a
        save of the whole stream (a threshold, outside manual mode, reached)."""
        await self._apply_snapshot_policy(aggregate, 0)

    async def load_or_create(self, aggregate_id: UUID) -> TAggregate:
        """`load`, or a fresh aggregate when there is nothing stored."""
        try:
            return await self.load(aggregate_id)
        except AggregateNotFoundError:
            return self.create_new(aggregate_id)

    async def get_or_raise(self, aggregate_id: UUID) -> TAggregate:
        return await self.load(aggregate_id)

    async def save(self, aggregate: TAggregate) -> None:
        """Append the aggregate's uncommitted events atomically, then publish them."""
        events = aggregate.uncommitted_events
        if not events:
            return
        tenant = bound_tenant()
        if tenant is not None:  # stamped here, so the publisher gets what the store keeps
            events = list(stamp_events(events, tenant))
        expected_version = aggregate.version - len(events)
        if not self._tracing_live():
            await self._save(aggregate, events, expected_version)
            return
        with self._create_span_context(
            "eventsource.repository.save",
            {
                ATTR_AGGREGATE_ID: aggregate.aggregate_id,
                ATTR_AGGREGATE_TYPE: self._aggregate_type,
                ATTR_EVENT_COUNT: len(events),
                ATTR_EXPECTED_VERSION: expected_version,
                ATTR_VERSION: aggregate.version,
            },
        ):
            await self._save(aggregate, events, expected_version)

    async def _save(
        self, aggregate: TAggregate, events: list[DomainEvent], expected_version: int
    ) -> None:
        await self._event_store.append_events(
            aggregate.aggregate_id, self._aggregate_type, events, expected_version
        )
        aggregate.mark_events_as_committed()
        if self._publisher is not None:
            await self._publisher.publish(events)
        if self._snapshot_store is not None:
            await self._apply_snapshot_policy(aggregate, expected_version)

    async def _apply_snapshot_policy(self, aggregate: TAggregate, version_before: int) -> None:
        """Snapshot as the strategy says after the save from `version_before`; its failures
        are logged and never reach the caller."""
        assert self._snapshot_store is not None
        if self._strategy.should_snapshot(aggregate, aggregate.version - version_before):
            await self._strategy.execute_snapshot(
                aggregate, self._snapshot_store, self._aggregate_type
            )

    async def create_snapshot(self, aggregate: TAggregate) -> Snapshot:
        """Build and save a snapshot now, whatever the mode and threshold."""
        if self._snapshot_store is None:
            raise RuntimeError("This repository has no snapshot store")
        with self._create_span_context(
            "eventsource.repository.create_snapshot",
            {
                ATTR_AGGREGATE_ID: aggregate.aggregate_id,
                ATTR_AGGREGATE_TYPE: self._aggregate_type,
                ATTR_VERSION: aggregate.version,
            },
        ):
            snapshot = build_snapshot(aggregate, self._aggregate_type)
            await self._snapshot_store.save_snapshot(snapshot)
            return snapshot

    async def await_pending_snapshots(self) -> int:
        """Wait for every background snapshot; how many there were."""
        return await self._strategy.await_pending()

    async def exists(self, aggregate_id: UUID) -> bool:
        """True if the aggregate's stream has at least one event."""
        with self._create_span_context(
            "eventsource.repository.exists",
            {ATTR_AGGREGATE_ID: aggregate_id, ATTR_AGGREGATE_TYPE: self._aggregate_type},
        ) as current:
            found = await self.get_version(aggregate_id) > 0
            if current is not None:
                current.set_attribute(EXISTS, found)
            return found

    async def get_version(self, aggregate_id: UUID) -> int:
        """The stream's version, 0 if none."""
        return await self._event_store.get_stream_version(aggregate_id, self._aggregate_type)
