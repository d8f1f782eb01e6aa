"""`TaggingEventStore`: an `EventStore` whose appends are tagged, for an `AggregateRepository`.

`AggregateRepository(event_store=TaggingEventStore(dcb), ...)` saves through the DCB store:
each event is tagged by its class's `dcb_tags` in the same transaction, under the same locks
as a DCB append, with the stream's expected-version check, so decisions reading by tag see
what aggregates saved (and conflict with it). Every other call is the underlying store's.
Tenant scopes are not applied to DCB appends: saving inside `tenant_scope` raises `DCBError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsource.dcb.base import AppendJob, DCBStore, StreamCheck, refuse_tenant_scope
from eventsource.dcb.query import split
from eventsource.events.base import DomainEvent
from eventsource.stores.base import check_append_args
from eventsource.stores.interface import EventStore
from eventsource.stores.records import AppendResult

__all__ = ["TaggingEventStore"]

F = TypeVar("F", bound=Callable[..., Any])


def _underlying(method: F) -> F:
    """`method` of `EventStore`, answered by the underlying store's own."""

    @functools.wraps(method, updated=())  # not its `__isabstractmethod__`
    def call(self: TaggingEventStore, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.event_store, method.__name__)(*args, **kwargs)

    return cast(F, call)


class TaggingEventStore(EventStore):
    """`dcb.event_store`, with `append_events` going through `dcb` (tagged); every other
    method is the underlying store's."""

    def __init__(self, dcb: DCBStore) -> None:
        self.dcb = dcb
        self.event_store = dcb.event_store

    async def append_events(
        self, aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        """Append at `expected_version` (`OptimisticLockError` otherwise), each event tagged
        by its class's `dcb_tags`."""
        check_append_args(aggregate_id, aggregate_type, events, expected_version)
        if not events:
            return AppendResult(True, expected_version)
        refuse_tenant_scope()
        check = StreamCheck(aggregate_id, aggregate_type, expected_version)
        written = await self.dcb.write(AppendJob(split(events), None, None, check))
        if not written:  # every event id was stored before: nothing new
            return AppendResult(True, expected_version)
        return AppendResult(True, written[-1][1], written[-1][0])

    # The abstract ones here, for type checkers; the others below.
    get_events = _underlying(EventStore.get_events)
    get_events_by_type = _underlying(EventStore.get_events_by_type)
    event_exists = _underlying(EventStore.event_exists)

    @property
    def db_system(self) -> str:
        """The underlying store's database system."""
        return self.event_store.db_system


for _name in (
    "get_global_position", "get_stream_version", "read_all", "read_stream", "read_committed",
    "committed_lag", "head_cursor", "cursor_for_position", "wait_for_new_events", "close",
):
    setattr(TaggingEventStore, _name, _underlying(getattr(EventStore, _name)))
