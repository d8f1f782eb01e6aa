"""The decide loop: `append_with_retry` reads again after a conflict, gives up after
`attempts`, and `decide` folds each projection over its own query's events (every backend)."""

from __future__ import annotations

import pytest
from _dcb_support import Backend, backend, noted

from eventsource.dcb import (
    DCBConflictError,
    Projection,
    Query,
    QueryItem,
    SequencedEvent,
    Tagged,
    append_with_retry,
    decide,
)

__all__ = ["backend"]  # the fixture, imported for pytest


async def test_a_conflict_reads_and_decides_again(backend: Backend) -> None:
    store, other = await backend.open(), await backend.open()
    query = Query(QueryItem(tags=["k"]))
    seen_counts: list[int] = []

    async def decide_once(events: list[SequencedEvent]) -> list[Tagged]:
        seen_counts.append(len(events))
        if len(seen_counts) == 1:  # someone else appends between this read and the append
            await other.append([noted("k")])
        return [noted("k")]

    [position] = await append_with_retry(store, query, decide_once)
    assert seen_counts == [0, 1]
    assert [e.position for e in (await store.read(query)).events][-1] == position


async def test_retries_stop_after_the_attempts(backend: Backend) -> None:
    store, other = await backend.open(), await backend.open()
    query = Query(QueryItem(tags=["k"]))
    calls = 0

    async def always_beaten(events: list[SequencedEvent]) -> list[Tagged]:
        nonlocal calls
        calls += 1
        await other.append([noted("k")])
        return [noted("k")]

    with pytest.raises(DCBConflictError):
        await append_with_retry(store, query, always_beaten, attempts=3)
    assert calls == 3
    assert len((await store.read(query)).events) == 3  # only the other store's
    with pytest.raises(ValueError, match="attempts"):
        await append_with_retry(store, query, always_beaten, attempts=0)


async def test_nothing_decided_appends_nothing(backend: Backend) -> None:
    store = await backend.open()
    assert await append_with_retry(store, Query(QueryItem(tags=["k"])), lambda events: []) == []


async def test_decide_folds_each_projection_over_its_own_events(backend: Backend) -> None:
    store = await backend.open()
    await store.append([noted("a"), noted("a", "b"), noted("b"), noted("c")])
    counts = {
        "a": Projection(Query(QueryItem(tags=["a"])), 0, lambda n, _: n + 1),
        "b": Projection(Query(QueryItem(tags=["b"])), 0, lambda n, _: n + 1),
    }
    states: list[dict[str, int]] = []

    def command(state: dict[str, int]) -> list[Tagged]:
        states.append(state)
        return [noted("a")]

    [position] = await decide(store, counts, command)
    assert states == [{"a": 2, "b": 2}]
    assert position == 5
