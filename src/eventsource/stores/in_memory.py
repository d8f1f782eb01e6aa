"""`InMemoryEventStore`: the executable specification of the event-store contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.observability.tracing import NO_SPAN, TracingMixin
from eventsource.stores._rules import check_append_args, check_expected_version, in_time_range
from eventsource.stores.interface import (
    AppendResult,
    EventStore,
    EventStream,
    ReadDirection,
    ReadOptions,
    ReadResult,
    StoredEvent,
    _set_event,
    _set_global_position,
    _set_stored_at,
    _set_stream_id,
    _set_stream_position,
    coerce_timestamp,
    stream_id_of,
    successful_append,
)
from eventsource.stores.interface import (
    _new_object as _new_stored,
)

__all__ = ["InMemoryEventStore"]


class _Stream:
    __slots__ = ("events", "stream_id")

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.events: list[StoredEvent] = []


class InMemoryEventStore(TracingMixin, EventStore):
    """Events held in process memory: for tests, development and prototypes.

    Every public call reads or changes the state in one synchronous step, with no `await` inside,
    so concurrent asyncio tasks cannot interleave within an append: the check of the expected
    version and the write are atomic, as a lock would make them, at no cost. Positions are
    gap-free from 1 and given in append order, which is also commit order. The store keeps and
    returns the very event objects it was given.
    """

    span_prefix = "in_memory_event_store"

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._streams: dict[tuple[int, str] | None, _Stream] = {}  # keys: see _key
        self._types_by_id: dict[UUID, list[str]] = {}
        self._all: list[StoredEvent] = []
        self._ids: set[int] = set()

    async def append_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        check_append_args(aggregate_id, aggregate_type, events, expected_version)
        if not events:
            return AppendResult(True, expected_version)
        observed = self._append_span(aggregate_id, aggregate_type, len(events), expected_version)
        if observed is NO_SPAN:  # nothing records: skip even the no-op context manager
            return self._append(aggregate_id, aggregate_type, events, expected_version)
        with observed:
            return self._append(aggregate_id, aggregate_type, events, expected_version)

    def _append(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        key = (aggregate_id.int, aggregate_type)  # UUID.__hash__ is Python code; int's is C
        stream = self._streams.get(key)
        current = len(stream.events) if stream is not None else 0
        if expected_version != current:  # an exact match always passes: skip the call
            check_expected_version(aggregate_id, expected_version, current)
        is_new_stream = stream is None
        if stream is None:
            stream = _Stream(stream_id_of(aggregate_id, aggregate_type))
        ids, all_events, stream_events = self._ids, self._all, stream.events
        stream_id = stream.stream_id
        position = len(all_events)
        # The hot loop: ids are kept as their 128-bit ints (hashed in C, unlike UUID objects)
        # and StoredEvent slots are filled directly (its frozen __init__ costs 3x more).
        for event in events:
            event_id = event.event_id.int
            if event_id in ids:  # idempotent: an event id is stored once, ever
                continue
            ids.add(event_id)
            current += 1
            position += 1
            stored = _new_stored(StoredEvent)
            _set_event(stored, event)
            _set_stream_id(stored, stream_id)
            _set_stream_position(stored, current)
            _set_global_position(stored, position)
            _set_stored_at(stored, event.occurred_at)
            stream_events.append(stored)
            all_events.append(stored)
        if is_new_stream and stream_events:  # a batch of duplicates creates no stream
            self._streams[key] = stream
            self._types_by_id.setdefault(aggregate_id, []).append(aggregate_type)
        self._signal_commit()
        return successful_append(current, position)

    def _stream_events(self, aggregate_id: UUID, aggregate_type: str | None) -> list[StoredEvent]:
        if aggregate_type is not None:
            stream = self._streams.get(_key(aggregate_id, aggregate_type))
            return stream.events if stream is not None else []
        types = self._types_by_id.get(aggregate_id, [])
        if len(types) == 1:
            return self._streams[_key(aggregate_id, types[0])].events
        merged = [s for t in types for s in self._streams[_key(aggregate_id, t)].events]
        merged.sort(key=lambda s: s.global_position)
        return merged

    async def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None = None,
        from_version: int = 0,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
    ) -> EventStream:
        with self._read_span(aggregate_id, aggregate_type, from_version):
            return self._get_events(
                aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp
            )

    def _get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None,
        from_version: int,
        from_timestamp: datetime | None,
        to_timestamp: datetime | None,
    ) -> EventStream:
        stored = self._stream_events(aggregate_id, aggregate_type)
        if from_version > 0:
            stored = [s for s in stored if s.stream_position > from_version]
        if from_timestamp is not None or to_timestamp is not None:
            stored = [
                s for s in stored
                if in_time_range(s.event.occurred_at, from_timestamp, to_timestamp)
            ]
        if aggregate_type is None:
            types = self._types_by_id.get(aggregate_id)
            aggregate_type = types[0] if types else "Unknown"
        version = stored[-1].stream_position if stored else max(from_version, 0)
        return EventStream(aggregate_id, aggregate_type, [s.event for s in stored], version)

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        stream = self._streams.get(_key(aggregate_id, aggregate_type))
        return len(stream.events) if stream is not None else 0

    async def get_events_by_type(
        self,
        aggregate_type: str,
        tenant_id: UUID | None = None,
        from_timestamp: datetime | float | None = None,
    ) -> list[DomainEvent]:
        start = coerce_timestamp(from_timestamp)
        found = [
            s.event for s in self._all
            if s.stream_id[37:] == aggregate_type  # "<36-char uuid>:<type>"
            and (tenant_id is None or s.event.tenant_id == tenant_id)
            and (start is None or s.event.occurred_at > start)
        ]
        found.sort(key=lambda e: e.occurred_at)
        return found

    async def event_exists(self, event_id: UUID) -> bool:
        return event_id.int in self._ids

    async def get_global_position(self) -> int:
        return len(self._all)

    def read_all(self, options: ReadOptions | None = None) -> ReadResult:
        return ReadResult(events=_select(self._all, options, by_global=True))

    def read_stream(self, stream_id: str, options: ReadOptions | None = None) -> ReadResult:
        aggregate_id, _, aggregate_type = stream_id.partition(":")
        try:
            uid = UUID(aggregate_id)
        except ValueError:
            raise ValueError(
                f"stream_id must be '<uuid>:<type>' or a UUID, got {stream_id!r}"
            ) from None
        events = self._stream_events(uid, aggregate_type or None)
        return ReadResult(events=_select(events, options, by_global=False))

    async def clear(self) -> None:
        """Forget every event."""
        self._streams.clear()
        self._types_by_id.clear()
        self._all.clear()
        self._ids.clear()

    async def get_all_events(self) -> list[DomainEvent]:
        """Every event, by `occurred_at`."""
        return sorted((s.event for s in self._all), key=lambda e: e.occurred_at)

    async def get_event_count(self) -> int:
        """How many events are stored."""
        return len(self._all)

    async def get_aggregate_ids(self) -> list[UUID]:
        """Ids of every aggregate with at least one event, in first-append order."""
        return list(self._types_by_id)


def _key(aggregate_id: object, aggregate_type: str) -> tuple[int, str] | None:
    """A stream's dict key: the UUID's int. None for anything else, so a bad id finds nothing."""
    return (aggregate_id.int, aggregate_type) if isinstance(aggregate_id, UUID) else None


def _select(
    events: list[StoredEvent], options: ReadOptions | None, *, by_global: bool
) -> list[StoredEvent]:
    """Apply ReadOptions to events in position order (-1 means "from the end")."""
    if options is None:
        return events.copy()
    start = options.from_position
    if start == -1:
        chosen = [] if options.direction is ReadDirection.FORWARD else events.copy()
    elif by_global:  # global positions are gap-free: position p is at index p - 1
        chosen = events[start:]
    else:
        chosen = [s for s in events if s.stream_position > start]
    if options.from_timestamp is not None or options.to_timestamp is not None:
        chosen = [
            s for s in chosen
            if in_time_range(s.event.occurred_at, options.from_timestamp, options.to_timestamp)
        ]
    if options.direction is ReadDirection.BACKWARD:
        chosen.reverse()
    if options.limit is not None:
        chosen = chosen[: options.limit]
    return chosen
