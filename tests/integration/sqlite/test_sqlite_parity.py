"""SQLiteEventStore gives the same answers as InMemoryEventStore, the executable spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from _sqlite_support import SqliteItemAdded

from eventsource import (
    DomainEvent,
    EventStore,
    ExpectedVersion,
    InMemoryEventStore,
    OptimisticLockError,
    ReadDirection,
    ReadOptions,
)
from eventsource.stores.interface import EventStream, StoredEvent
from eventsource.stores.sqlite import SQLiteEventStore

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BACK = ReadDirection.BACKWARD


def _shape(value: Any) -> Any:
    """What the contract promises about a result (stored_at may differ between stores)."""
    if isinstance(value, StoredEvent):
        return (
            "stored",
            value.event_id,
            value.stream_id,
            value.stream_position,
            value.global_position,
        )
    if isinstance(value, EventStream):
        return (
            "stream",
            value.aggregate_id,
            value.aggregate_type,
            [e.event_id for e in value.events],
            value.version,
        )
    if isinstance(value, DomainEvent):
        return ("event", value.event_id)
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


class _Scenario:
    def __init__(self) -> None:
        self.a, self.b, self.tenant, self.unknown = uuid4(), uuid4(), uuid4(), uuid4()
        self.events = [
            SqliteItemAdded(
                aggregate_id=self.a if i % 3 else self.b,
                sku=f"s{i}",
                occurred_at=T0 + timedelta(minutes=(i * 7) % 10),
                tenant_id=self.tenant if i % 2 else None,
            )
            for i in range(10)
        ]

    def of(self, aggregate_id: UUID, *indexes: int) -> list[DomainEvent]:
        return [e for e in (self.events[i] for i in indexes) if e.aggregate_id == aggregate_id]

    async def run(self, store: EventStore) -> list[Any]:
        a, b, out = self.a, self.b, []

        async def call(coro: Any) -> None:
            try:
                out.append(_shape(await coro))
            except OptimisticLockError as exc:
                out.append(("conflict", exc.expected_version, exc.actual_version))

        await call(store.append_events(a, "Cart", self.of(a, 1, 2), 0))
        await call(store.append_events(a, "Cart", [], 7))
        await call(store.append_events(a, "Cart", self.of(a, 1, 4, 4, 5), 2))  # duplicates
        await call(store.append_events(a, "Cart", self.of(a, 1), 3))  # only duplicates
        await call(store.append_events(a, "Cart", self.of(a, 7), ExpectedVersion.NO_STREAM))
        await call(store.append_events(b, "Cart", self.of(b, 0), ExpectedVersion.STREAM_EXISTS))
        await call(store.append_events(a, "Cart", self.of(a, 7), 1))
        await call(store.append_events(b, "Cart", self.of(b, 0, 3), ExpectedVersion.ANY))
        await call(store.append_events(a, "Other", self.of(a, 7, 8), ExpectedVersion.NO_STREAM))
        await call(store.append_events(b, "Cart", self.of(b, 6, 9), ExpectedVersion.STREAM_EXISTS))
        for aggregate_type in ("Cart", "Other", None):
            await call(store.get_events(a, aggregate_type))
            await call(store.get_events(a, aggregate_type, from_version=1))
            await call(store.get_events(a, aggregate_type, from_version=9))
        await call(store.get_events(self.unknown))
        await call(
            store.get_events(
                b,
                "Cart",
                from_timestamp=T0 + timedelta(minutes=3),
                to_timestamp=T0 + timedelta(minutes=8),
            )
        )
        await call(store.get_events_by_type("Cart"))
        await call(store.get_events_by_type("Cart", tenant_id=self.tenant))
        await call(store.get_events_by_type("Cart", from_timestamp=T0 + timedelta(minutes=4)))
        with pytest.warns(DeprecationWarning, match="float epoch"):
            await call(store.get_events_by_type("Cart", from_timestamp=T0.timestamp() + 240))
        for event in self.events[:3]:
            await call(store.event_exists(event.event_id))
        await call(store.event_exists(self.unknown))
        await call(store.get_stream_version(a, "Cart"))
        await call(store.get_stream_version(a, "Nope"))
        await call(store.get_global_position())
        options = [
            None,
            ReadOptions(from_position=2, limit=3),
            ReadOptions(direction=BACK),
            ReadOptions(direction=BACK, from_position=2),
            ReadOptions(direction=BACK, limit=2),
            ReadOptions(from_position=-1),
            ReadOptions(direction=BACK, from_position=-1),
            ReadOptions(limit=0),
            ReadOptions(
                from_timestamp=T0 + timedelta(minutes=2), to_timestamp=T0 + timedelta(minutes=6)
            ),
        ]
        for option in options:
            out.append(_shape((await store.read_all(option)).events))
            out.append(_shape([s async for s in store.read_all(option)]))
            for stream in (f"{a}:Cart", str(a), f"{b}:Cart", f"{self.unknown}:Cart"):
                out.append(_shape((await store.read_stream(stream, option)).events))
        first = await store.read_committed(None, 2)
        out.append((_shape(first.events), await store.committed_lag(first.cursor)))
        second = await store.read_committed(first.cursor, 100)
        out.append((_shape(second.events), await store.committed_lag(second.cursor)))
        return out


async def test_same_answers_as_the_in_memory_store(tmp_path: Path) -> None:
    scenario = _Scenario()
    expected = await scenario.run(InMemoryEventStore())
    async with SQLiteEventStore(str(tmp_path / "events.db")) as store:
        await store.initialize()
        assert await scenario.run(store) == expected
        stored = {e.event_id: e for e in (await store.get_events(scenario.a)).events}
        for event in scenario.events:  # events come back equal, as their registered class
            if event.event_id in stored:
                assert stored[event.event_id] == event
                assert type(stored[event.event_id]) is SqliteItemAdded


async def test_read_stream_rejects_a_malformed_stream_id(tmp_path: Path) -> None:
    async with SQLiteEventStore(str(tmp_path / "events.db")) as store:
        with pytest.raises(ValueError, match="stream_id"):
            store.read_stream("not-a-uuid:Cart")
