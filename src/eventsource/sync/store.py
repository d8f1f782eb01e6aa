"""`SyncEventStore`: an event store for synchronous code, run on a portal's event loop."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.stores.interface import (
    AppendResult,
    CommittedPage,
    EventStore,
    EventStream,
    ReadOptions,
    ReadResult,
    StoredEvent,
)
from eventsource.sync._bound import PortalBound, postgresql_factory
from eventsource.sync.portal import Portal

__all__ = ["SyncEventStore"]


class SyncEventStore(PortalBound[EventStore]):
    """The `EventStore` API as blocking calls, usable from any thread.

    Build it from a factory, run on the portal's loop on first use (see `eventsource.sync`):
    `SyncEventStore.sqlite(path)`, `.postgresql(url)`, `.in_memory()`, or
    `SyncEventStore(factory)` for any store (`initialize()` is called on what the factory
    returns, when it has one). The store is closed by `close()`, by leaving a `with` block, or
    when the portal closes (at interpreter exit at the latest). Errors of the store
    (`OptimisticLockError`, ...) reach the caller unchanged.
    """

    kind = EventStore

    @classmethod
    def in_memory(cls, *, portal: Portal | None = None) -> SyncEventStore:
        """An `InMemoryEventStore` (tests, demos)."""
        from eventsource.stores.in_memory import InMemoryEventStore

        return cls._made_by(InMemoryEventStore, portal, "SyncEventStore.in_memory()")

    @classmethod
    def sqlite(
        cls,
        database: str | os.PathLike[str],
        *,
        event_registry: EventRegistry | None = None,
        portal: Portal | None = None,
    ) -> SyncEventStore:
        """A `SQLiteEventStore` on `database` (a file path or `":memory:"`), connected and
        its tables created on first use. For other options pass a factory instead."""
        from eventsource.stores.sqlite import SQLiteEventStore

        path = os.fspath(database)
        return cls._made_by(
            lambda: SQLiteEventStore(path, event_registry), portal,
            f"SyncEventStore.sqlite({path!r})",
        )

    @classmethod
    def postgresql(
        cls,
        url: str,
        *,
        event_registry: EventRegistry | None = None,
        outbox_enabled: bool = False,
        engine_options: Mapping[str, object] | None = None,
        portal: Portal | None = None,
    ) -> SyncEventStore:
        """A `PostgreSQLEventStore` over an engine of its own (`create_async_engine(url,
        **engine_options)`, asyncpg), made on the portal and disposed of on close; tables
        are created or upgraded on first use."""
        from eventsource.stores.postgresql import PostgreSQLEventStore

        sessions, dispose = postgresql_factory(url, engine_options)

        async def build() -> EventStore:
            store = PostgreSQLEventStore(
                await sessions(), event_registry=event_registry, outbox_enabled=outbox_enabled
            )
            await store.initialize()
            return store

        async def release(store: EventStore) -> None:
            assert isinstance(store, PostgreSQLEventStore)
            try:
                await store.close()
            finally:
                await dispose(store.session_factory)

        return cls._over(build, release, portal, "SyncEventStore.postgresql(...)")

    # -- the EventStore API ----------------------------------------------------------------

    def append_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        """Append atomically if the stream is at `expected_version` (`OptimisticLockError`
        otherwise)."""
        return self.run(
            lambda store: store.append_events(
                aggregate_id, aggregate_type, events, expected_version
            )
        )

    def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None = None,
        from_version: int = 0,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
    ) -> EventStream:
        return self.run(
            lambda store: store.get_events(
                aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp
            )
        )

    def get_events_by_type(
        self,
        aggregate_type: str,
        tenant_id: UUID | None = None,
        from_timestamp: datetime | None = None,
    ) -> list[DomainEvent]:
        return self.run(
            lambda store: store.get_events_by_type(aggregate_type, tenant_id, from_timestamp)
        )

    def event_exists(self, event_id: UUID) -> bool:
        return self.run(lambda store: store.event_exists(event_id))

    def get_global_position(self) -> int:
        return self.run(lambda store: store.get_global_position())

    def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        return self.run(lambda store: store.get_stream_version(aggregate_id, aggregate_type))

    def read_all(self, options: ReadOptions | None = None) -> list[StoredEvent]:
        """Every event (within `options`) in global-position order, as one list: page through
        a large store with `read_committed` instead."""
        return self.run(lambda store: _collected(store.read_all(options)))

    def read_stream(self, stream_id: str, options: ReadOptions | None = None) -> list[StoredEvent]:
        """One stream (`"<uuid>:<type>"`, or a bare UUID) in version order, as one list."""
        return self.run(lambda store: _collected(store.read_stream(stream_id, options)))

    def read_committed(self, after: str | None = None, limit: int = 1000) -> CommittedPage:
        """The next page in commit-safe order after the opaque cursor `after`."""
        return self.run(lambda store: store.read_committed(after, limit))

    def head_cursor(self) -> str:
        """A cursor after every event committed so far."""
        return self.run(lambda store: store.head_cursor())


async def _collected(result: ReadResult) -> list[StoredEvent]:
    return (await result).events
