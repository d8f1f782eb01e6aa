"""Hostile values must never make a row that cannot be read back.

The invariant, on every backend: a write either raises a typed error and writes nothing, or
what was written reads back equal. Which values are refused is the same everywhere (one rule:
no NaN or infinity, at most 200 levels of nesting, integers of at most 4,300 digits, no lone
surrogates, no NUL character), so `refused` below is the model every backend must agree with.
Events are checked by a property test on every event store; snapshots, dead letters and outbox
rows by fixed values on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_repositories import open_repository
from test_snapshots import open_snapshot_store
from test_stores import open_store

from eventsource import DomainEvent, SerializationError, register_event, tenant_scope
from eventsource.snapshots import Snapshot, SnapshotError
from eventsource.stores.interface import EventStore

MAX_DEPTH = 200
MAX_INT = 10**4300  # the smallest integer of 4,301 digits
_PG = pytest.mark.postgresql
STORES = ["memory", "sqlite-file", pytest.param("postgresql", marks=_PG)]
DATABASES = ["sqlite", pytest.param("postgresql", marks=_PG)]


@register_event
class HostileProbe(DomainEvent):
    event_type: str = "HostileProbe"
    aggregate_type: str = "Probe"
    data: Any = None
    amount: float = 0.0
    note: str = ""


def bad_text(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text)


def refused(value: object, enclosed: int = 1) -> bool:
    """Whether the rule refuses `value` when it sits inside `enclosed` JSON containers."""
    if enclosed > MAX_DEPTH:
        return True
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return abs(value) >= MAX_INT
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return bad_text(value)
    if isinstance(value, list):
        return any(refused(item, enclosed + 1) for item in value)
    assert isinstance(value, dict)
    return any(bad_text(k) or refused(v, enclosed + 1) for k, v in value.items())


def nested(levels: int, kind: str = "dict", leaf: object = 1) -> object:
    """`leaf` inside `levels` lists or dicts."""
    value = leaf
    for _ in range(levels):
        value = [value] if kind == "list" else {"k": value}
    return value


texts = st.text(st.characters(exclude_categories=()), max_size=6) | st.sampled_from(
    ["\x00", "\ud800", "a\udfffb", "\\u0000", "\\\x00", "\\\\u0000", "\U0001f600"]
)
big_ints = st.integers(4295, 4305).flatmap(
    lambda digits: st.sampled_from([10 ** (digits - 1), -(10**digits - 1)])
)
# Untyped floats stay below 1e16: PostgreSQL's JSONB turns the exponent form pydantic writes
# above it into an exact decimal, which comes back as an int (docs/stores.md).
loose_floats = st.floats(-1e15, 1e15) | st.sampled_from([math.nan, math.inf, -math.inf])
scalars = st.none() | st.booleans() | st.integers() | big_ints | loose_floats | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)
# Deep values are built in the test from (levels, kind): hypothesis cannot print them.
wrappings = st.none() | st.tuples(
    st.integers(196, 204) | st.integers(250, 260), st.sampled_from(["list", "dict"])
)


async def refused_by(write: Awaitable[object]) -> SerializationError | None:
    """The typed error `write` raised, or None when it succeeded."""
    try:
        await write
    except SerializationError as exc:
        return exc
    return None


async def check_append(store: EventStore, event: HostileProbe) -> None:
    """Append `event` alone to a new stream; check the invariant and that it agrees with
    `refused`."""
    bad = (
        refused(event.data)
        or refused(event.metadata)
        or refused(event.amount)
        or bad_text(event.note)
    )
    before = await store.get_global_position()
    refusal = await refused_by(store.append_events(event.aggregate_id, "Probe", [event], 0))
    if refusal is not None:
        assert bad, f"refused a storable event: {refusal}"
        assert str(event.event_id) in str(refusal)
        assert await store.get_global_position() == before
        assert not await store.event_exists(event.event_id)
        assert (await store.get_events(event.aggregate_id, "Probe")).version == 0
        return
    assert not bad, "stored an event the rule refuses"
    assert (await store.get_events(event.aggregate_id, "Probe")).events == [event]


def probe(data: object = None, **fields: Any) -> HostileProbe:
    return HostileProbe(aggregate_id=uuid.uuid4(), data=data, **fields)


@pytest.mark.parametrize("backend", STORES)
def test_an_append_is_refused_typed_or_reads_back_equal(backend: str, tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        opened = open_store(backend, tmp_path)
        store = runner.run(opened.__aenter__())
        try:

            @settings(
                max_examples=150,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(
                data=values,
                wrap=wrappings,
                metadata=st.dictionaries(texts, values, max_size=2),
                amount=st.floats(),
                note=texts,
            )
            @example(data=math.nan, wrap=None, metadata={}, amount=0.0, note="")
            @example(data=None, wrap=None, metadata={"x": math.inf}, amount=0.0, note="")
            @example(data=None, wrap=None, metadata={}, amount=-math.inf, note="")
            @example(data=1, wrap=(199, "dict"), metadata={}, amount=0.0, note="")
            @example(data=1, wrap=(200, "dict"), metadata={}, amount=0.0, note="")
            @example(data=[], wrap=(200, "list"), metadata={}, amount=0.0, note="")
            @example(data=[], wrap=(201, "list"), metadata={}, amount=0.0, note="")
            @example(data=1, wrap=(1000, "dict"), metadata={}, amount=0.0, note="")
            @example(data=[MAX_INT - 1, 1 - MAX_INT], wrap=None, metadata={}, amount=0.0, note="")
            @example(data=MAX_INT, wrap=None, metadata={}, amount=0.0, note="")
            @example(data={"k\x00": 1}, wrap=None, metadata={}, amount=0.0, note="")
            @example(data="\\u0000 \\\\u0000", wrap=None, metadata={}, amount=0.0, note="a\x00")
            @example(data=None, wrap=None, metadata={}, amount=0.0, note="\ud83d\ude00")
            def check(
                data: object,
                wrap: tuple[int, str] | None,
                metadata: dict[str, Any],
                amount: float,
                note: str,
            ) -> None:
                if wrap is not None:
                    data = nested(*wrap, leaf=data)
                event = probe(data, metadata=metadata, amount=amount, note=note)
                runner.run(check_append(store, event))

            check()
            # Every stored row still reads back, in one pass over the whole store.
            everything = runner.run(store.read_all()._collect()).events
            assert len(everything) == runner.run(store.get_global_position()) or (
                backend == "postgresql"  # positions may have gaps there
            )
        finally:
            runner.run(opened.__aexit__(None, None, None))


# -- snapshots, dead letters, outbox rows: fixed values on the databases ------------------------

HOSTILE: dict[str, object] = {
    "nan": math.nan,
    "infinity": math.inf,
    "minus infinity": -math.inf,
    "201 levels": nested(200),
    "1000 levels": nested(1000),
    "4,301 digits": MAX_INT,
    "lone surrogate": "a\ud800",
    "NUL": "a\x00b",
    "NUL in a key": {"k\x00": 1},
}
FINE: dict[str, object] = {
    "200 levels": nested(199),
    "4,300 digits": -(MAX_INT - 1),
    "text that spells an escape": "\\u0000",
    "astral": "\U0001f600 é",
}
CASES = [pytest.param(value, id=name) for name, value in {**HOSTILE, **FINE}.items()]


@pytest.mark.parametrize("backend", ["sqlite-file", pytest.param("postgresql", marks=_PG)])
@pytest.mark.parametrize("value", CASES)
async def test_a_snapshot_is_refused_typed_or_reads_back_equal(
    backend: str, value: object, tmp_path: Path
) -> None:
    state = {"v": value}
    snapshot = Snapshot(uuid.uuid4(), "Probe", 1, state, 1, probe().occurred_at)
    async with open_snapshot_store(backend, tmp_path) as store:
        try:
            await store.save_snapshot(snapshot)
        except SnapshotError:
            assert refused(state, enclosed=0)
            assert await store.get_snapshot(snapshot.aggregate_id, "Probe") is None
            return
        assert not refused(state, enclosed=0)
        assert await store.get_snapshot(snapshot.aggregate_id, "Probe") == snapshot


@pytest.mark.parametrize("backend", DATABASES)
async def test_dead_letters_are_refused_typed_or_read_back_equal(
    backend: str, tmp_path: Path
) -> None:
    async with open_repository("dlq", backend, tmp_path) as dlq:
        for value in (*HOSTILE.values(), *FINE.values()):
            event_id = uuid.uuid4()
            data = {"event_id": str(event_id), "v": value}
            error = RuntimeError("x")
            refusal = await refused_by(
                dlq.add_failed_event(event_id, "probe", "Probe", data, error)
            )
            if refusal is not None:
                assert refused(data, enclosed=0)
                assert str(event_id) in str(refusal)
                continue
            assert not refused(data, enclosed=0)
            [entry] = [e for e in await dlq.get_failed_events() if e.event_id == event_id]
            assert json.loads(entry.event_data) == data
        assert len(await dlq.get_failed_events()) == len(FINE)
        with tenant_scope(uuid.uuid4()):  # reads the event data of every row
            assert await dlq.get_failed_events() == []
            assert (await dlq.get_failure_stats()).total_failed == 0


@pytest.mark.parametrize("backend", DATABASES)
async def test_outbox_rows_are_refused_typed_or_read_back_equal(
    backend: str, tmp_path: Path
) -> None:
    async with open_repository("outbox", backend, tmp_path) as outbox:
        for value in (*HOSTILE.values(), *FINE.values()):
            event = probe(value)
            if await refused_by(outbox.add_event(event)) is not None:
                assert refused(value)
                continue
            assert not refused(value)
            [entry] = [e for e in await outbox.get_pending_events() if e.event_id == event.event_id]
            assert entry.event_data["payload"]["data"] == value
        assert len(await outbox.get_pending_events()) == len(FINE)
