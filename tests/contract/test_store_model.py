"""Random appends and reads against a trivially correct model of an event store.

The model is a list of events in global order plus, per stream, the indexes of its events.
Positions are gap-free here, which holds for the backends this runs on (memory, SQLite).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from test_stores import open_store

from eventsource import (
    DomainEvent,
    EventStore,
    ExpectedVersion,
    OptimisticLockError,
    ReadDirection,
    ReadOptions,
    register_event,
)

T = TypeVar("T")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
AGGREGATES = [UUID(int=0xA0 + n) for n in range(3)]
TYPES = ["Alpha", "Beta"]
STREAMS = [(a, t) for a in AGGREGATES for t in TYPES]
TENANTS = [None, UUID(int=0x7E1), UUID(int=0x7E2)]
EXPECTATIONS = ["no_stream", "any", "exists", "exact", "stale"]


@register_event
class ModelEvent(DomainEvent):
    event_type: str = "ModelEvent"
    aggregate_type: str = "Alpha"
    n: int


Key = tuple[UUID, str]


@dataclass
class Row:
    event_id: UUID
    key: Key
    stream_position: int
    global_position: int
    occurred_at: datetime
    tenant_id: UUID | None

    @property
    def stream_id(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"


@dataclass
class Model:
    rows: list[Row] = field(default_factory=list)
    streams: dict[Key, list[Row]] = field(default_factory=dict)

    def version(self, key: Key) -> int:
        return len(self.streams.get(key, []))

    def ids(self) -> list[UUID]:
        return [r.event_id for r in self.rows]

    def allows(self, expected: int, current: int) -> bool:
        if expected == ExpectedVersion.ANY:
            return True
        if expected == ExpectedVersion.STREAM_EXISTS:
            return current > 0
        return current == expected

    def store(self, key: Key, event: DomainEvent) -> None:
        if event.event_id in {r.event_id for r in self.rows}:
            return
        stream = self.streams.setdefault(key, [])
        row = Row(
            event.event_id,
            key,
            len(stream) + 1,
            len(self.rows) + 1,
            event.occurred_at,
            event.tenant_id,
        )
        stream.append(row)
        self.rows.append(row)

    def stream_rows(self, aggregate_id: UUID, aggregate_type: str | None) -> list[Row]:
        if aggregate_type is not None:
            return list(self.streams.get((aggregate_id, aggregate_type), []))
        return [r for r in self.rows if r.key[0] == aggregate_id]


def in_range(row: Row, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or row.occurred_at >= start) and (end is None or row.occurred_at <= end)


def select(rows: list[Row], options: ReadOptions, *, by_global: bool) -> list[Row]:
    def position(row: Row) -> int:
        return row.global_position if by_global else row.stream_position

    chosen = [
        r
        for r in rows
        if position(r) > options.from_position
        and in_range(r, options.from_timestamp, options.to_timestamp)
    ]
    if options.direction is ReadDirection.BACKWARD:
        chosen.reverse()
    return chosen if options.limit is None else chosen[: options.limit]


instants = st.one_of(st.none(), st.integers(0, 40).map(lambda s: T0 + timedelta(seconds=s)))
batch_specs = st.lists(
    st.tuples(st.sampled_from(["new", "new", "new", "dup", "twin"]), st.integers(0, 40)),
    max_size=4,
)
read_options = st.builds(
    ReadOptions,
    direction=st.sampled_from(ReadDirection),
    from_position=st.integers(0, 12),
    limit=st.one_of(st.none(), st.integers(0, 6)),
    from_timestamp=instants,
    to_timestamp=instants,
)


class StoreMachine(RuleBasedStateMachine):
    """Drives one store and the model with the same calls and compares every answer."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.opened = open_store(self.backend, Path(tempfile.gettempdir()))
        self.store: EventStore = self.run(self.opened.__aenter__())
        self.model = Model()
        self.counter = 0

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        try:
            self.run(self.opened.__aexit__(None, None, None))
        finally:
            self.loop.close()

    def new_event(self, key: Key, seconds: int, event_id: UUID | None = None) -> ModelEvent:
        self.counter += 1
        return ModelEvent(
            event_id=event_id or UUID(int=self.counter),
            aggregate_id=key[0],
            aggregate_type=key[1],
            n=self.counter,
            occurred_at=T0 + timedelta(seconds=seconds),
            tenant_id=TENANTS[seconds % len(TENANTS)],
        )

    def build_batch(self, key: Key, spec: list[tuple[str, int]]) -> list[ModelEvent]:
        batch: list[ModelEvent] = []
        stored = self.model.ids()
        for kind, k in spec:
            if kind == "dup" and stored:  # an id stored anywhere, maybe in another stream
                batch.append(self.new_event(key, k, stored[k % len(stored)]))
            elif kind == "twin" and batch:  # the same id twice in one batch
                batch.append(self.new_event(key, k, batch[k % len(batch)].event_id))
            else:
                batch.append(self.new_event(key, k))
        return batch

    @staticmethod
    def expectation(kind: str, current: int, offset: int) -> int:
        if kind == "no_stream":
            return ExpectedVersion.NO_STREAM
        if kind == "any":
            return ExpectedVersion.ANY
        if kind == "exists":
            return ExpectedVersion.STREAM_EXISTS
        if kind == "exact":
            return current
        return current - offset if current - offset >= 0 else current + offset

    @rule(
        key=st.sampled_from(STREAMS),
        spec=batch_specs,
        kind=st.sampled_from(EXPECTATIONS),
        offset=st.integers(1, 3),
    )
    def append(self, key: Key, spec: list[tuple[str, int]], kind: str, offset: int) -> None:
        current = self.model.version(key)
        expected = self.expectation(kind, current, offset)
        batch = self.build_batch(key, spec)
        if batch and not self.model.allows(expected, current):
            before = self.run(self.store.get_global_position())
            with pytest.raises(OptimisticLockError) as caught:
                self.run(self.store.append_events(key[0], key[1], batch, expected))
            error = caught.value
            assert (error.aggregate_id, error.expected_version, error.actual_version) == (
                key[0],
                expected,
                current,
            )
            assert self.run(self.store.get_global_position()) == before
            return
        result = self.run(self.store.append_events(key[0], key[1], batch, expected))
        if not batch:
            assert (result.success, result.new_version) == (True, expected)
            return
        for event in batch:
            self.model.store(key, event)
        assert (result.success, result.new_version) == (True, self.model.version(key))
        assert result.global_position == len(self.model.rows)

    @rule(
        keys=st.lists(st.sampled_from(STREAMS), min_size=2, max_size=3, unique=True),
        size=st.integers(1, 3),
        seconds=st.integers(0, 40),
    )
    def append_to_several_streams_at_once(self, keys: list[Key], size: int, seconds: int) -> None:
        batches = {key: [self.new_event(key, seconds + i) for i in range(size)] for key in keys}
        versions = {key: self.model.version(key) for key in keys}

        async def race() -> list[Any]:
            return await asyncio.gather(
                *(
                    self.store.append_events(key[0], key[1], batches[key], versions[key])
                    for key in keys
                )
            )

        start = len(self.model.rows)
        results = self.run(race())
        assert [r.new_version for r in results] == [versions[k] + size for k in keys]
        # the store chose the interleaving; each batch must keep its order within it
        stored = self.run(self.store.read_all(ReadOptions(from_position=start))).events
        by_id = {e.event_id: (key, e) for key, batch in batches.items() for e in batch}
        assert sorted(s.event_id for s in stored) == sorted(by_id)
        for item in stored:
            key, event = by_id[item.event_id]
            self.model.store(key, event)
        for key, batch in batches.items():
            assert [r.event_id for r in self.model.streams[key][-size:]] == [
                e.event_id for e in batch
            ]

    @rule(
        aggregate_id=st.sampled_from(AGGREGATES),
        aggregate_type=st.sampled_from([*TYPES, None]),
        from_version=st.integers(0, 6),
        start=instants,
        end=instants,
    )
    def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None,
        from_version: int,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        stream = self.run(
            self.store.get_events(
                aggregate_id,
                aggregate_type,
                from_version=from_version,
                from_timestamp=start,
                to_timestamp=end,
            )
        )
        rows = [
            r
            for r in self.model.stream_rows(aggregate_id, aggregate_type)
            if r.stream_position > from_version and in_range(r, start, end)
        ]
        assert [e.event_id for e in stream.events] == [r.event_id for r in rows]
        assert all(type(e) is ModelEvent for e in stream.events)
        if aggregate_type is not None:
            assert stream.aggregate_type == aggregate_type
            assert stream.version == (rows[-1].stream_position if rows else from_version)

    @rule(options=read_options)
    def read_all(self, options: ReadOptions) -> None:
        result = self.run(self.store.read_all(options))
        expected = select(self.model.rows, options, by_global=True)
        got = [
            (s.event_id, s.stream_id, s.stream_position, s.global_position) for s in result.events
        ]
        want = [(r.event_id, r.stream_id, r.stream_position, r.global_position) for r in expected]
        assert got == want

    @rule(
        aggregate_id=st.sampled_from(AGGREGATES),
        aggregate_type=st.sampled_from([*TYPES, None]),
        options=read_options,
    )
    def read_stream(
        self, aggregate_id: UUID, aggregate_type: str | None, options: ReadOptions
    ) -> None:
        name = f"{aggregate_id}:{aggregate_type}" if aggregate_type else str(aggregate_id)

        async def iterate() -> list[Any]:
            return [s async for s in self.store.read_stream(name, options)]

        got = [(s.event_id, s.stream_position, s.global_position) for s in self.run(iterate())]
        rows = self.model.stream_rows(aggregate_id, aggregate_type)
        # a bare id reads several streams: order by global position, filter by stream position
        expected = select(rows, options, by_global=False)
        assert got == [(r.event_id, r.stream_position, r.global_position) for r in expected]

    @rule(
        aggregate_type=st.sampled_from(TYPES),
        tenant=st.sampled_from(TENANTS),
        start=instants,
    )
    def get_events_by_type(
        self, aggregate_type: str, tenant: UUID | None, start: datetime | None
    ) -> None:
        found = self.run(self.store.get_events_by_type(aggregate_type, tenant, start))
        rows = [
            r
            for r in self.model.rows
            if r.key[1] == aggregate_type
            and (tenant is None or r.tenant_id == tenant)
            and (start is None or r.occurred_at > start)
        ]
        times = [e.occurred_at for e in found]
        assert times == sorted(times)
        assert sorted(e.event_id for e in found) == sorted(r.event_id for r in rows)

    @rule(key=st.sampled_from(STREAMS), pick=st.integers(0, 100), known=st.booleans())
    def point_lookups(self, key: Key, pick: int, known: bool) -> None:
        assert self.run(self.store.get_stream_version(*key)) == self.model.version(key)
        stored = self.model.ids()
        if known and stored:
            assert self.run(self.store.event_exists(stored[pick % len(stored)]))
        else:
            assert not self.run(self.store.event_exists(UUID(int=10**9 + pick)))

    @invariant()
    def global_position_matches(self) -> None:
        assert self.run(self.store.get_global_position()) == len(self.model.rows)


MODEL_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class MemoryMachine(StoreMachine):
    backend = "memory"


class SQLiteMemoryMachine(StoreMachine):
    backend = "sqlite-memory"


TestInMemoryStoreModel = MemoryMachine.TestCase
TestInMemoryStoreModel.settings = MODEL_SETTINGS
TestSQLiteMemoryStoreModel = SQLiteMemoryMachine.TestCase
TestSQLiteMemoryStoreModel.settings = MODEL_SETTINGS
