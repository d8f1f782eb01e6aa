"""What only the in-memory store promises (API.md §3.1, §3.3); the rest is the contract suite."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

import eventsource.stores
import eventsource.stores.in_memory
import eventsource.stores.interface
from eventsource import (
    AppendResult,
    DomainEvent,
    EventStream,
    ExpectedVersion,
    InMemoryEventStore,
    ReadDirection,
    ReadOptions,
    register_event,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@register_event
class MemNoted(DomainEvent):
    event_type: str = "MemNoted"
    aggregate_type: str = "Note"


def test_expected_version_constants_are_plain_ints() -> None:
    assert (ExpectedVersion.NO_STREAM, ExpectedVersion.ANY, ExpectedVersion.STREAM_EXISTS) == (
        0,
        -1,
        -2,
    )
    assert type(ExpectedVersion.ANY) is int


def test_data_types() -> None:
    assert AppendResult.successful(3, 9) == AppendResult(True, 3, 9, False)
    assert AppendResult.conflicted(4) == AppendResult(False, 4, 0, True)
    assert AppendResult(True, 1).global_position == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        AppendResult(True, 1).new_version = 2  # type: ignore[misc]
    aggregate_id = uuid4()
    empty = EventStream.empty(aggregate_id, "Note")
    assert (empty.events, empty.version, empty.is_empty, empty.latest_event) == ([], 0, True, None)
    assert EventStream(aggregate_id, "Note").events == []
    assert [d.value for d in ReadDirection] == ["forward", "backward"]
    assert ReadOptions() == ReadOptions(ReadDirection.FORWARD, 0, None, None, None)
    ReadOptions(from_position=-1)
    with pytest.raises(ValueError, match="from_position"):
        ReadOptions(from_position=-2)
    with pytest.raises(ValueError, match="limit"):
        ReadOptions(limit=-1)


def test_import_paths() -> None:
    for module in (eventsource.stores, eventsource.stores.interface):
        assert module.ExpectedVersion is ExpectedVersion
        assert module.AppendResult is AppendResult
    assert eventsource.stores.InMemoryEventStore is InMemoryEventStore
    assert eventsource.stores.in_memory.InMemoryEventStore is InMemoryEventStore


async def test_returns_the_appended_objects() -> None:
    store = InMemoryEventStore()
    note = uuid4()
    event = MemNoted(aggregate_id=note)
    await store.append_events(note, "Note", [event], 0)
    assert (await store.get_events(note, "Note")).events[0] is event
    assert (await store.read_all()).events[0].event is event


async def test_helpers() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    first, second = uuid4(), uuid4()
    late = MemNoted(aggregate_id=first, occurred_at=T0 + timedelta(hours=1))
    early = MemNoted(aggregate_id=second, occurred_at=T0)
    await store.append_events(first, "Note", [late], 0)
    await store.append_events(second, "Note", [early], 0)
    assert await store.get_all_events() == [early, late]
    assert await store.get_event_count() == 2
    assert await store.get_aggregate_ids() == [first, second]
    await store.clear()
    assert await store.get_event_count() == 0
    assert await store.get_aggregate_ids() == []
    assert await store.get_global_position() == 0
    assert not await store.event_exists(late.event_id)
    await store.append_events(first, "Note", [late], 0)  # the id is free again after clear()
    assert await store.get_global_position() == 1


async def test_from_position_minus_one_reads_from_the_end() -> None:
    store = InMemoryEventStore()
    note = uuid4()
    events = [MemNoted(aggregate_id=note) for _ in range(3)]
    await store.append_events(note, "Note", events, 0)
    assert (await store.read_all(ReadOptions(from_position=-1))).events == []
    backward = await store.read_all(
        ReadOptions(direction=ReadDirection.BACKWARD, from_position=-1, limit=2)
    )
    assert [s.global_position for s in backward.events] == [3, 2]


async def test_bad_stream_id_names_it() -> None:
    with pytest.raises(ValueError, match="not-a-uuid"):
        InMemoryEventStore().read_stream("not-a-uuid:Note")


async def test_all_duplicate_append_leaves_no_trace_of_a_stream() -> None:
    # BUG (core): an append whose events are all duplicates still creates an empty stream, so
    # get_aggregate_ids() lists an aggregate without events and get_events(id) reports the
    # empty stream's type instead of the one holding the events.
    store = InMemoryEventStore()
    first, second = uuid4(), uuid4()
    event = MemNoted(aggregate_id=first)
    await store.append_events(first, "Note", [event], 0)
    copy = MemNoted(aggregate_id=second, event_id=event.event_id)
    await store.append_events(second, "Ghost", [copy], 0)
    await store.append_events(second, "Real", [MemNoted(aggregate_id=second)], 0)
    assert await store.get_aggregate_ids() == [first, second]
    assert (await store.get_events(second)).aggregate_type == "Real"
    third = uuid4()
    ghost = MemNoted(aggregate_id=third, event_id=event.event_id)
    await store.append_events(third, "Ghost", [ghost], 0)
    assert await store.get_aggregate_ids() == [first, second]
    assert (await store.get_events(third)).aggregate_type == "Unknown"
