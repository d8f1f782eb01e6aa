"""`DCBStore`: reading by query and appending under a condition, written once over a backend.

The public calls check their arguments here (query, tags, token) before any I/O; a backend
implements `_read` (matching events and a token, in one consistent snapshot) and `_append`
(check the condition and write the events with their tags, atomically).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

from eventsource.dcb.exceptions import DCBError, InvalidQueryError
from eventsource.dcb.query import (
    AppendCondition,
    ConsistencyToken,
    Query,
    Tagged,
    TaggedEvents,
    split,
)
from eventsource.events.base import DomainEvent
from eventsource.stores.interface import EventStore
from eventsource.tenancy import bound_tenant

__all__ = ["AppendJob", "DCBReadResult", "DCBStore", "SequencedEvent", "StreamCheck"]


@dataclass(frozen=True, slots=True)
class SequencedEvent:
    """An event read by query: its global position and its tags."""

    position: int
    event: DomainEvent
    tags: frozenset[str]


class StreamCheck(NamedTuple):
    """`append_stream`'s expected version of its one stream, checked with the condition."""

    aggregate_id: UUID
    aggregate_type: str
    expected: int


Written = list[tuple[int, int]]  # (global position, stream version) of each stored event


class AppendJob(NamedTuple):
    """A checked append: the events with their tags, the condition and its token's mark,
    and (for `TaggingEventStore`) the one stream's expected version."""

    events: TaggedEvents
    condition: AppendCondition | None
    mark: str | None
    stream: StreamCheck | None


@dataclass(frozen=True, slots=True)
class DCBReadResult:
    """What `DCBStore.read` returns: the matching events and the token of what was seen."""

    events: list[SequencedEvent]
    token: ConsistencyToken


class DCBStore(ABC):
    """Tagged events in an event store's `events` table, read by `Query` and appended under an
    `AppendCondition` (dynamic consistency boundaries). Events appended here are ordinary
    events of their streams as well (ExpectedVersion.ANY): every other reader sees them."""

    store_id: str  # what tokens carry: the identity of the data this store reads
    event_store: EventStore  # the event store whose events this store tags and appends

    async def read(self, query: Query) -> DCBReadResult:
        """The events matching `query`, oldest first, and the token of this read."""
        if not isinstance(query, Query):
            raise InvalidQueryError(f"read needs a Query, got {query!r:.100}")
        refuse_tenant_scope()
        return await self._read(query)

    async def append(
        self,
        events: Iterable[DomainEvent | Tagged],
        condition: AppendCondition | None = None,
    ) -> list[int]:
        """Append `events` (tagged by their class's `dcb_tags` and any `Tagged` wrapper) in
        one transaction; with a `condition`, only if no event matching its query was stored
        that the read which returned `condition.after` had not seen, else
        `DCBConflictError` listing those events' positions. Returns the new positions."""
        pairs = split(events)
        refuse_tenant_scope()
        mark: str | None = None
        if condition is not None:
            if not isinstance(condition, AppendCondition):
                raise InvalidQueryError(
                    f"condition must be an AppendCondition, got {condition!r:.100}"
                )
            if condition.after is not None:
                mark = condition.after.mark_for(self.store_id)
        job = AppendJob(pairs, condition, mark, None)
        return [position for position, _ in await self._append(job)]

    async def write(self, job: AppendJob) -> Written:
        """The checked append itself (`append` and `TaggingEventStore` build the job)."""
        return await self._append(job)

    async def initialize(self) -> None:
        """Open the underlying event store, if it opens (a SQLite store connects here)."""
        initialize = getattr(self.event_store, "initialize", None)
        if initialize is not None:
            await initialize()

    async def close(self) -> None:
        """Close the underlying event store."""
        await self.event_store.close()

    @staticmethod
    def refuse_outbox(store: EventStore) -> None:
        """Raise `DCBError` for a store that writes outbox rows: DCB appends do not (yet)."""
        if getattr(store, "outbox_enabled", False):
            raise DCBError(
                f"{type(store).__name__} has outbox_enabled, and DCB appends write no outbox "
                "rows yet: use a DCB store over an event store without the outbox"
            )

    def token(self, mark: str) -> ConsistencyToken:
        """A token of this store."""
        return ConsistencyToken(self.store_id, mark)

    @abstractmethod
    async def _read(self, query: Query) -> DCBReadResult:
        """Matching events and a token, from one consistent view of the store."""

    @abstractmethod
    async def _append(self, job: AppendJob) -> Written:
        """Check the job's condition against what its mark saw (and its stream's version:
        raise `OptimisticLockError`) and write, in one transaction; the stored events'
        positions and versions, in position order."""


def refuse_tenant_scope() -> None:
    """Raise `DCBError` inside `tenant_scope`: DCB reads would see other tenants' events and
    appends would not stamp the tenant (scopes are not applied yet)."""
    if bound_tenant() is not None:
        raise DCBError("DCB reads and appends do not apply tenant_scope: call them outside one")


def streams_of(events: TaggedEvents) -> dict[tuple[UUID, str], list[DomainEvent]]:
    """A batch's events by stream `(aggregate_id, aggregate_type)`, in batch order."""
    streams: dict[tuple[UUID, str], list[DomainEvent]] = {}
    for event, _ in events:
        streams.setdefault((event.aggregate_id, event.aggregate_type), []).append(event)
    return streams
