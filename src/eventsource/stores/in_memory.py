"""`InMemoryEventStore`: the executable specification of the event-store contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EVOLUTION_SEEN, EventRegistry
from eventsource.observability.tracing import TracingMixin
from eventsource.stores.base import RowEventStore, StreamQuery, check_expected_version
from eventsource.stores.codec import check_payloads, current_shapes
from eventsource.stores.records import (
    AppendResult,
    EventStream,
    ReadOptions,
    ReadResult,
    StoredEvent,
    _set_event,
    _set_global_position,
    _set_stored_at,
    _set_stream_id,
    _set_stream_position,
    in_time_range,
    position_from_cursor,
    select_stored,
    stream_id_of,
    successful_append,
)
from eventsource.stores.records import _new_object as _new_stored
from eventsource.tenancy import bound_tenant, check_stream_owner

if TYPE_CHECKING:
    from eventsource.repositories.outbox import InMemoryOutboxRepository

__all__ = ["InMemoryEventStore"]


class _Stream:
    __slots__ = ("events", "stream_id")

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.events: list[StoredEvent] = []


class InMemoryEventStore(TracingMixin, RowEventStore[Sequence[DomainEvent]]):
    """Events held in process memory: for tests, development and prototypes.

    Every public call reads or changes the state in one synchronous step, with no `await` inside,
    so concurrent asyncio tasks cannot interleave within an append: the check of the expected
    version and the write are atomic, as a lock would make them, at no cost. Positions are
    gap-free from 1 and given in append order, which is also commit order. The store keeps and
    returns the very event objects it was given (inside a `tenant_scope`, tenant-less events
    are stored as copies stamped with the bound tenant).

    With `outbox=` an `InMemoryOutboxRepository`, every stored event also gets an outbox row in
    the same synchronous step (as `outbox_enabled` stores do in their transaction), so an
    `OutboxRelay` can publish them in tests and prototypes.

    Inside `tenant_scope(t)` every read sees only t's events (see docs/tenancy.md); outside
    one, the only cost of tenancy is one ContextVar lookup per call.

    It refuses what the durable stores refuse, so tests on it see what production would: an
    event whose type resolves neither in `event_registry` nor in the default registry, or
    whose JSON dump the durable stores could not write or read back, raises
    `SerializationError` before anything is stored (an event whose values do not plainly meet
    the rule is dumped once for that, and the dump dropped).
    """

    span_prefix = "in_memory_event_store"

    def __init__(
        self,
        enable_tracing: bool = True,
        *,
        outbox: InMemoryOutboxRepository | None = None,
        event_registry: EventRegistry | None = None,
    ) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._outbox = outbox
        self._registry = event_registry
        self._streams: dict[tuple[int, str] | None, _Stream] = {}  # keys: see _key
        self._types_by_id: dict[UUID, list[str]] = {}
        self._all: list[StoredEvent] = []
        self._ids: set[int] = set()

    def _encode(
        self, aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent]
    ) -> Sequence[DomainEvent]:
        check_payloads(events, self._registry)  # refuse what no durable store could keep
        # Kept as they are (no serialising in memory), but for an old class's object: that is
        # kept as durable stores would read it back (eventsource.evolution).
        return current_shapes(events, self._registry) if EVOLUTION_SEEN[0] else events

    def _write(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
        tenant: UUID | None,
    ) -> AppendResult:
        key = (aggregate_id.int, aggregate_type)  # UUID.__hash__ is Python code; int's is C
        stream = self._streams.get(key)
        current = len(stream.events) if stream is not None else 0
        if tenant is not None and stream is not None:  # streams exist only with events
            check_stream_owner(
                aggregate_id, aggregate_type, tenant, stream.events[-1].event.tenant_id
            )
        if expected_version != current:  # an exact match always passes: skip the call
            check_expected_version(aggregate_id, expected_version, current)
        is_new_stream = stream is None
        if stream is None:
            stream = _Stream(stream_id_of(aggregate_id, aggregate_type))
        ids, all_events, stream_events = self._ids, self._all, stream.events
        stream_id = stream.stream_id
        position = len(all_events)
        before = current
        # The hot loop: ids are kept as their 128-bit ints (hashed in C, unlike UUID objects)
        # and StoredEvent slots are filled directly (its frozen __init__ costs several times more).
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
        if self._outbox is not None and current > before:
            added = stream_events[before - current :]
            self._outbox.add_appended([s.event for s in added], aggregate_id, aggregate_type)
        self._signal_commit()
        return successful_append(current, position)

    def _stream_events(
        self, aggregate_id: UUID, aggregate_type: str | None, tenant: UUID | None
    ) -> list[StoredEvent]:
        if aggregate_type is not None:
            stream = self._streams.get(_key(aggregate_id, aggregate_type))
            found = stream.events if stream is not None else []
        else:
            types = self._types_by_id.get(aggregate_id, [])
            if len(types) == 1:
                found = self._streams[_key(aggregate_id, types[0])].events
            else:
                found = [s for t in types for s in self._streams[_key(aggregate_id, t)].events]
                found.sort(key=lambda s: s.global_position)
        if tenant is not None:
            return [s for s in found if s.event.tenant_id == tenant]
        return found

    def _select_stream(self, query: StreamQuery) -> EventStream:
        aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp, tenant = query
        stored = self._stream_events(aggregate_id, aggregate_type, tenant)
        if from_version > 0:
            stored = [s for s in stored if s.stream_position > from_version]
        if from_timestamp is not None or to_timestamp is not None:
            stored = [
                s for s in stored
                if in_time_range(s.event.occurred_at, from_timestamp, to_timestamp)
            ]
        if aggregate_type is None:
            types = self._types_by_id.get(aggregate_id)
            if tenant is not None:  # the first type the tenant itself stored
                first = self._stream_events(aggregate_id, None, tenant)[:1]
                types = [first[0].stream_id[37:]] if first else None
            aggregate_type = types[0] if types else "Unknown"
        version = stored[-1].stream_position if stored else max(from_version, 0)
        return EventStream(aggregate_id, aggregate_type, [s.event for s in stored], version)

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        stream = self._streams.get(_key(aggregate_id, aggregate_type))
        if stream is None:
            return 0
        tenant = bound_tenant()
        if tenant is None:
            return len(stream.events)
        # The position of the tenant's last event in the stream (0: not the tenant's stream).
        return next(
            (s.stream_position for s in reversed(stream.events) if s.event.tenant_id == tenant),
            0,
        )

    async def _select_type(
        self, aggregate_type: str, tenant_id: UUID | None, start: datetime | None
    ) -> list[DomainEvent]:
        found = [
            s.event for s in self._all
            if s.stream_id[37:] == aggregate_type  # "<36-char uuid>:<type>"
            and (tenant_id is None or s.event.tenant_id == tenant_id)
            and (start is None or s.event.occurred_at > start)
        ]
        found.sort(key=lambda e: e.occurred_at)
        return found

    async def event_exists(self, event_id: UUID) -> bool:
        tenant = bound_tenant()
        if tenant is None or event_id.int not in self._ids:
            return event_id.int in self._ids
        return any(
            s.event.event_id == event_id and s.event.tenant_id == tenant for s in self._all
        )

    async def get_global_position(self) -> int:
        tenant = bound_tenant()
        if tenant is None:
            return len(self._all)
        return next(
            (s.global_position for s in reversed(self._all) if s.event.tenant_id == tenant), 0
        )

    async def committed_lag(self, after: str | None = None) -> int:
        tenant = bound_tenant()
        if tenant is None:
            return await super().committed_lag(after)
        start = position_from_cursor(after)
        return sum(1 for s in self._all[start:] if s.event.tenant_id == tenant)

    def _select_all(self, options: ReadOptions, tenant: UUID | None) -> ReadResult:
        return ReadResult(events=select_stored(self._all, options, by_global=True, tenant=tenant))

    def _select_stream_result(
        self, aggregate_id: UUID, aggregate_type: str | None, opts: ReadOptions, tenant: UUID | None
    ) -> ReadResult:
        events = self._stream_events(aggregate_id, aggregate_type, tenant)
        return ReadResult(events=select_stored(events, opts, by_global=False))

    async def clear(self) -> None:
        """Forget every event (of every tenant: refused inside a `tenant_scope`)."""
        tenant = bound_tenant()
        if tenant is not None:
            raise RuntimeError(
                f"clear() would delete every tenant's events, but the unit of work is bound to "
                f"tenant {tenant}: call it outside tenant_scope"
            )
        self._streams.clear()
        self._types_by_id.clear()
        self._all.clear()
        self._ids.clear()

    async def get_all_events(self) -> list[DomainEvent]:
        """Every event (the bound tenant's, inside a scope), by `occurred_at`."""
        return sorted((s.event for s in self._visible()), key=lambda e: e.occurred_at)

    async def get_event_count(self) -> int:
        """How many events are stored (the bound tenant's, inside a scope)."""
        return len(self._all) if bound_tenant() is None else len(self._visible())

    async def get_aggregate_ids(self) -> list[UUID]:
        """Ids of every aggregate with at least one event (of the bound tenant, inside a
        scope), in first-append order."""
        if bound_tenant() is None:
            return list(self._types_by_id)
        return list(dict.fromkeys(s.event.aggregate_id for s in self._visible()))

    def _visible(self) -> list[StoredEvent]:
        tenant = bound_tenant()
        if tenant is None:
            return self._all
        return [s for s in self._all if s.event.tenant_id == tenant]


def _key(aggregate_id: object, aggregate_type: str) -> tuple[int, str] | None:
    """A stream's dict key: the UUID's int. None for anything else, so a bad id finds nothing."""
    return (aggregate_id.int, aggregate_type) if isinstance(aggregate_id, UUID) else None
