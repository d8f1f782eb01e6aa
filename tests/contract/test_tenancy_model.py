"""Random appends and reads under random tenant scopes, against a model of tenant isolation.

The model is the plain event-store model (test_store_model) plus the tenancy rules: inside
`tenant_scope(t)` an append stamps tenant-less events with t, refuses an event of another
tenant or a stream whose latest event is not t's (`TenantMismatchError`, nothing written), and
every read sees exactly t's events; outside any scope everything is visible.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from test_store_model import Row, read_options, select
from test_stores import open_store

from eventsource import (
    DomainEvent,
    EventStore,
    ExpectedVersion,
    OptimisticLockError,
    register_event,
    tenant_scope,
)
from eventsource.exceptions import TenantMismatchError

T = TypeVar("T")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
A, B = UUID(int=0xA11CE), UUID(int=0xB0B)
SCOPES: list[UUID | None] = [None, A, B]
AGGREGATES = [UUID(int=0xC0 + n) for n in range(3)]
TYPES = ["Alpha", "Beta"]
STREAMS = [(a, t) for a in AGGREGATES for t in TYPES]
Key = tuple[UUID, str]


@register_event
class ScopedEvent(DomainEvent):
    event_type: str = "TenancyModelEvent"
    aggregate_type: str = "Alpha"
    n: int


def allows(expected: int, current: int) -> bool:
    if expected == ExpectedVersion.ANY:
        return True
    if expected == ExpectedVersion.STREAM_EXISTS:
        return current > 0
    return current == expected


def scoped(tenant: UUID | None) -> Any:
    return tenant_scope(tenant) if tenant is not None else _NoScope()


class _NoScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# (event tenant, "new" or "dup"): dup reuses an id already stored, maybe another tenant's
batch_specs = st.lists(
    st.tuples(st.sampled_from([None, None, A, B]), st.sampled_from(["new", "new", "dup"])),
    max_size=3,
)


class TenancyMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.opened = open_store(self.backend, Path(tempfile.gettempdir()))
        self.store: EventStore = self.run(self.opened.__aenter__())
        self.rows: list[Row] = []
        self.streams: dict[Key, list[Row]] = {}
        self.counter = 0

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.opened.__aexit__(None, None, None))
        finally:
            self.loop.close()

    def visible(self, rows: list[Row], tenant: UUID | None) -> list[Row]:
        return rows if tenant is None else [r for r in rows if r.tenant_id == tenant]

    def in_scope(self, tenant: UUID | None, coroutine: Coroutine[Any, Any, T]) -> T:
        async def bound() -> T:
            with scoped(tenant):
                return await coroutine

        return self.run(bound())

    @rule(
        tenant=st.sampled_from(SCOPES),
        key=st.sampled_from(STREAMS),
        spec=batch_specs,
        kind=st.sampled_from(["no_stream", "any", "exists", "exact", "stale"]),
        seconds=st.integers(0, 30),
    )
    def append(
        self,
        tenant: UUID | None,
        key: Key,
        spec: list[tuple[UUID | None, str]],
        kind: str,
        seconds: int,
    ) -> None:
        stream = self.streams.get(key, [])
        current = len(stream)
        expected = {
            "no_stream": ExpectedVersion.NO_STREAM, "any": ExpectedVersion.ANY,
            "exists": ExpectedVersion.STREAM_EXISTS, "exact": current, "stale": current + 1,
        }[kind]
        batch: list[ScopedEvent] = []
        for owner, how in spec:
            self.counter += 1
            event_id = UUID(int=self.counter)
            if how == "dup" and self.rows:
                event_id = self.rows[self.counter % len(self.rows)].event_id
            batch.append(ScopedEvent(
                event_id=event_id, aggregate_id=key[0], aggregate_type=key[1], n=self.counter,
                tenant_id=owner, occurred_at=T0 + timedelta(seconds=seconds + len(batch)),
            ))
        mismatch = tenant is not None and batch and (
            any(e.tenant_id not in (None, tenant) for e in batch)
            or (stream and stream[-1].tenant_id != tenant)
        )
        before = self.run(self.store.get_global_position())
        if mismatch:
            with pytest.raises(TenantMismatchError):
                self.in_scope(tenant, self.store.append_events(key[0], key[1], batch, expected))
        elif batch and not allows(expected, current):
            with pytest.raises(OptimisticLockError):
                self.in_scope(tenant, self.store.append_events(key[0], key[1], batch, expected))
        else:
            self.in_scope(tenant, self.store.append_events(key[0], key[1], batch, expected))
            known = {r.event_id for r in self.rows}
            for event in batch:
                if event.event_id in known:
                    continue
                known.add(event.event_id)
                rows = self.streams.setdefault(key, [])
                row = Row(event.event_id, key, len(rows) + 1, len(self.rows) + 1,
                          event.occurred_at, event.tenant_id or tenant)
                rows.append(row)
                self.rows.append(row)
            return
        assert self.run(self.store.get_global_position()) == before  # nothing written

    @rule(tenant=st.sampled_from(SCOPES), options=read_options)
    def read_all(self, tenant: UUID | None, options: Any) -> None:
        got = self.in_scope(tenant, self._read_all(options))
        want = select(self.visible(self.rows, tenant), options, by_global=True)
        assert got == [(r.event_id, r.tenant_id, r.stream_position, r.global_position)
                       for r in want]

    async def _read_all(self, options: Any) -> list[tuple[UUID, UUID | None, int, int]]:
        return [(s.event_id, s.event.tenant_id, s.stream_position, s.global_position)
                async for s in self.store.read_all(options)]

    @rule(
        tenant=st.sampled_from(SCOPES),
        aggregate_id=st.sampled_from(AGGREGATES),
        aggregate_type=st.sampled_from([*TYPES, None]),
        from_version=st.integers(0, 4),
        options=read_options,
    )
    def read_one_stream(
        self,
        tenant: UUID | None,
        aggregate_id: UUID,
        aggregate_type: str | None,
        from_version: int,
        options: Any,
    ) -> None:
        rows = self.visible(
            self.streams.get((aggregate_id, aggregate_type), []) if aggregate_type
            else [r for r in self.rows if r.key[0] == aggregate_id],
            tenant,
        )
        stream = self.in_scope(
            tenant, self.store.get_events(aggregate_id, aggregate_type, from_version)
        )
        kept = [r for r in rows if r.stream_position > from_version]
        assert [e.event_id for e in stream.events] == [r.event_id for r in kept]
        assert stream.version == (kept[-1].stream_position if kept else from_version)
        name = f"{aggregate_id}:{aggregate_type}" if aggregate_type else str(aggregate_id)
        read = self.in_scope(tenant, self._read_stream(name, options))
        assert [s.event_id for s in read.events] == [
            r.event_id for r in select(rows, options, by_global=False)
        ]
        if aggregate_type is not None:
            version = self.in_scope(
                tenant, self.store.get_stream_version(aggregate_id, aggregate_type)
            )
            assert version == (rows[-1].stream_position if rows else 0)

    async def _read_stream(self, name: str, options: Any) -> Any:
        # read_stream binds the tenant when called, so it must be called inside the scope.
        return await self.store.read_stream(name, options)

    @rule(
        tenant=st.sampled_from(SCOPES),
        aggregate_type=st.sampled_from(TYPES),
        asked=st.sampled_from(SCOPES),
        start=st.one_of(st.none(), st.integers(0, 30)),
    )
    def by_type(
        self, tenant: UUID | None, aggregate_type: str, asked: UUID | None, start: int | None
    ) -> None:
        since = None if start is None else T0 + timedelta(seconds=start)
        found = self.in_scope(
            tenant, self.store.get_events_by_type(aggregate_type, asked, since)
        )
        rows = [
            r for r in self.visible(self.rows, tenant)
            if r.key[1] == aggregate_type and asked in (None, r.tenant_id)
            and (since is None or r.occurred_at > since)
        ]
        assert sorted(e.event_id for e in found) == sorted(r.event_id for r in rows)

    @rule(tenant=st.sampled_from(SCOPES), pick=st.integers(0, 50))
    def point_lookups(self, tenant: UUID | None, pick: int) -> None:
        if self.rows:
            row = self.rows[pick % len(self.rows)]
            exists = self.in_scope(tenant, self.store.event_exists(row.event_id))
            assert exists == (tenant is None or row.tenant_id == tenant)

    @invariant()
    def totals_in_every_scope(self) -> None:
        for tenant in SCOPES:
            rows = self.visible(self.rows, tenant)
            position = self.in_scope(tenant, self.store.get_global_position())
            assert position == (rows[-1].global_position if rows else 0)
            assert self.in_scope(tenant, self.store.committed_lag(None)) == len(rows)
            page = self.in_scope(tenant, self.store.read_committed(None, limit=1000))
            assert [s.event_id for s in page.events] == [r.event_id for r in rows]


MODEL_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class MemoryTenancyMachine(TenancyMachine):
    backend = "memory"


class SQLiteTenancyMachine(TenancyMachine):
    backend = "sqlite-memory"


TestInMemoryTenancyModel = MemoryTenancyMachine.TestCase
TestInMemoryTenancyModel.settings = MODEL_SETTINGS
TestSQLiteTenancyModel = SQLiteTenancyMachine.TestCase
TestSQLiteTenancyModel.settings = MODEL_SETTINGS
