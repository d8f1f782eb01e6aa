"""`TaggingEventStore`: an `EventStore` whose appends are tagged, for an `AggregateRepository`.

`AggregateRepository(event_store=TaggingEventStore(dcb), ...)` saves through
`DCBStore.append_stream`: each event is tagged by its class's `dcb_tags` in the same
transaction, under the same locks as a DCB append, so decisions reading by tag see what
aggregates saved (and conflict with it). Every other call is the underlying store's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsource.dcb.base import DCBStore
from eventsource.events.base import DomainEvent
from eventsource.stores.interface import EventStore
from eventsource.stores.records import (
    AppendResult,
    CommittedPage,
    EventStream,
    ReadOptions,
    ReadResult,
)

__all__ = ["TaggingEventStore"]


class TaggingEventStore(EventStore):
    """`dcb.event_store`, with `append_events` going through `dcb.append_stream` (tagged)."""

    def __init__(self, dcb: DCBStore) -> None:
        self._dcb = dcb
        self._inner = dcb.event_store

    async def append_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        """Append at `expected_version`, each event tagged by its class's `dcb_tags`."""
        return await self._dcb.append_stream(aggregate_id, aggregate_type, events,
                                             expected_version)

    async def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None = None,
        from_version: int = 0,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
    ) -> EventStream:
        """The underlying store's `get_events`."""
        return await self._inner.get_events(aggregate_id, aggregate_type, from_version,
                                            from_timestamp, to_timestamp)

    async def get_events_by_type(
        self,
        aggregate_type: str,
        tenant_id: UUID | None = None,
        from_timestamp: datetime | float | None = None,
    ) -> list[DomainEvent]:
        """The underlying store's `get_events_by_type`."""
        return await self._inner.get_events_by_type(aggregate_type, tenant_id, from_timestamp)

    async def event_exists(self, event_id: UUID) -> bool:
        """The underlying store's `event_exists`."""
        return await self._inner.event_exists(event_id)

    async def get_global_position(self) -> int:
        """The underlying store's `get_global_position`."""
        return await self._inner.get_global_position()

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        """The underlying store's `get_stream_version`."""
        return await self._inner.get_stream_version(aggregate_id, aggregate_type)

    def read_all(self, options: ReadOptions | None = None) -> ReadResult:
        """The underlying store's `read_all`."""
        return self._inner.read_all(options)

    def read_stream(self, stream_id: str, options: ReadOptions | None = None) -> ReadResult:
        """The underlying store's `read_stream`."""
        return self._inner.read_stream(stream_id, options)

    async def read_committed(self, after: str | None = None, limit: int = 1000) -> CommittedPage:
        """The underlying store's `read_committed`."""
        return await self._inner.read_committed(after, limit)

    async def committed_lag(self, after: str | None = None) -> int:
        """The underlying store's `committed_lag`."""
        return await self._inner.committed_lag(after)

    async def head_cursor(self) -> str:
        """The underlying store's `head_cursor`."""
        return await self._inner.head_cursor()

    async def cursor_for_position(self, position: int) -> str:
        """The underlying store's `cursor_for_position`."""
        return await self._inner.cursor_for_position(position)

    async def wait_for_new_events(self, timeout: float) -> bool:
        """The underlying store's `wait_for_new_events`."""
        return await self._inner.wait_for_new_events(timeout)

    @property
    def db_system(self) -> str:
        """The underlying store's database system."""
        return self._inner.db_system

    async def close(self) -> None:
        """Close the underlying store."""
        await self._inner.close()
