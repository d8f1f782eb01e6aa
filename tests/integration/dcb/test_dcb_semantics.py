"""DCB reads and conditional appends on every backend: query semantics against a reference
matcher (a hypothesis property test), tags derived from event classes, the skew cases and
bad input."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from _dcb_support import BACKENDS, Backend, Closed, Enrolled, Noted, backend, noted, open_backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventsource.dcb import (
    AppendCondition,
    ConsistencyToken,
    DCBConflictError,
    ForeignTokenError,
    InvalidQueryError,
    InvalidTagError,
    Query,
    QueryItem,
    Tagged,
)

__all__ = ["backend"]  # the fixture, imported for pytest

TAGS = ["a", "b", "c", "d"]
KINDS = {"ContractPing": Noted, "ContractPong": Closed}

events_st = st.lists(
    st.tuples(st.sampled_from(sorted(KINDS)), st.frozensets(st.sampled_from(TAGS), max_size=3)),
    min_size=1, max_size=6,
)
item_st = st.builds(
    lambda types, tags: (types, tags),
    st.frozensets(st.sampled_from(sorted(KINDS)), max_size=2),
    st.frozensets(st.sampled_from(TAGS), max_size=3),
).filter(lambda item: bool(item[0] or item[1]))
query_st = st.lists(item_st, min_size=1, max_size=3)


@pytest.mark.parametrize("name", BACKENDS)
def test_read_matches_the_reference_matcher(name: str, tmp_path: Path) -> None:
    """Property: after random tagged appends, `read(query)` returns exactly the events the
    reference matcher selects (an OR of items; types OR, tags AND), in position order."""
    with asyncio.Runner() as runner:
        opened = runner.run(open_backend(name, tmp_path))
        store = runner.run(opened.open())
        model: list[tuple[int, str, frozenset[str]]] = []  # (position, type, tags)

        @settings(max_examples=40, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(batch=events_st, queries=st.lists(query_st, min_size=1, max_size=4))
        def check(batch: list[tuple[str, frozenset[str]]], queries: list[list[tuple[
                frozenset[str], frozenset[str]]]]) -> None:
            appended = [Tagged(KINDS[kind](aggregate_id=uuid.uuid4()), tags)
                        for kind, tags in batch]
            new = runner.run(store.append(appended))
            model.extend((p, k, t) for p, (k, t) in zip(new, batch, strict=True))
            for items in queries:
                query = Query(*(QueryItem(types, tags) for types, tags in items))
                expected = [p for p, kind, tags in model if query.matches(kind, tags)]
                found = runner.run(store.read(query)).events
                assert [e.position for e in found] == expected
                assert all(query.matches(e.event.event_type, e.tags) for e in found)

        try:
            check()
        finally:
            runner.run(opened.close())


@pytest.mark.parametrize("name", BACKENDS)
def test_a_condition_fails_exactly_on_unseen_matches(name: str, tmp_path: Path) -> None:
    """Property: read(query), then another store appends a batch, then a conditional append
    under the read's token: it conflicts iff the batch holds events matching the query, and
    names exactly their positions (the model: the reference matcher over that batch)."""
    with asyncio.Runner() as runner:
        opened = runner.run(open_backend(name, tmp_path))
        reader, writer = runner.run(opened.open()), runner.run(opened.open())

        @settings(max_examples=30, deadline=None)
        @given(before=events_st, between=events_st, items=query_st)
        def check(before: list[tuple[str, frozenset[str]]],
                  between: list[tuple[str, frozenset[str]]],
                  items: list[tuple[frozenset[str], frozenset[str]]]) -> None:
            query = Query(*(QueryItem(types, tags) for types, tags in items))
            runner.run(writer.append([Tagged(KINDS[k](aggregate_id=uuid.uuid4()), t)
                                      for k, t in before]))
            seen = runner.run(reader.read(query))
            new = runner.run(writer.append([Tagged(KINDS[k](aggregate_id=uuid.uuid4()), t)
                                            for k, t in between]))
            unseen = [p for p, (k, t) in zip(new, between, strict=True) if query.matches(k, t)]
            condition = AppendCondition(query, seen.token)
            if unseen:
                with pytest.raises(DCBConflictError) as caught:
                    runner.run(reader.append([noted("mine")], condition))
                assert caught.value.positions == tuple(unseen)
            else:
                runner.run(reader.append([noted("mine")], condition))

        try:
            check()
        finally:
            runner.run(opened.close())


async def test_tags_derive_from_the_event_class(backend: Backend) -> None:
    store = await backend.open()
    event = Enrolled(aggregate_id=uuid.uuid4(), course_id="c1", student_id="s1")
    await store.append([event, Tagged(Enrolled(aggregate_id=uuid.uuid4(), course_id="c2",
                                               student_id="s1"), frozenset({"extra"}))])
    found = (await store.read(Query(QueryItem(tags=["student:s1"])))).events
    assert [e.tags for e in found] == [
        frozenset({"course:c1", "student:s1"}), frozenset({"course:c2", "student:s1", "extra"})
    ]
    assert found[0].event == event
    course = await store.read(Query(QueryItem(["DcbEnrolled"], ["course:c1", "student:s1"])))
    assert [e.event.event_id for e in course.events] == [event.event_id]


async def _refused_after(backend: Backend, query: Query, written: Tagged) -> None:
    """A store reads `query`; another appends `written`; the first one's conditional append
    fails naming that event's position, and writes nothing."""
    store, other = await backend.open(), await backend.open()
    seen = await store.read(query)
    [position] = await other.append([written])
    with pytest.raises(DCBConflictError) as caught:
        await store.append([noted("x")], AppendCondition(query, seen.token))
    assert caught.value.positions == (position,)
    assert (await store.read(Query(QueryItem(tags=["x"])))).events == []


async def test_a_type_only_condition_conflicts_with_an_append_of_that_type(
    backend: Backend,
) -> None:
    await _refused_after(backend, Query(QueryItem(types=["ContractPong"])),
                         noted("unrelated", kind=Closed))


async def test_a_condition_on_one_tag_conflicts_with_an_event_carrying_more(
    backend: Backend,
) -> None:
    await _refused_after(backend, Query(QueryItem(tags=["a"])), noted("a", "b"))


async def _read_a_and_b_then_append(
    backend: Backend, writes: tuple[str, str]
) -> list[list[int] | BaseException]:
    """Two stores read tags a and b; then, at once, each appends an event tagged with its
    entry of `writes`, on condition that its own tag did not change."""
    first, second = await backend.open(), await backend.open()
    query_a, query_b = Query(QueryItem(tags=["a"])), Query(QueryItem(tags=["b"]))
    seen_a, seen_b = await first.read(query_a), await second.read(query_b)
    return list(await asyncio.gather(
        first.append([noted(writes[0])], AppendCondition(query_a, seen_a.token)),
        second.append([noted(writes[1])], AppendCondition(query_b, seen_b.token)),
        return_exceptions=True,
    ))


async def test_disjoint_tags_both_commit(backend: Backend) -> None:
    done = await _read_a_and_b_then_append(backend, ("a", "b"))
    assert [len(batch) for batch in done] == [1, 1]  # type: ignore[arg-type]
    store = await backend.open()
    assert len((await store.read(Query(QueryItem(tags=["a"]), QueryItem(tags=["b"])))).events) == 2


async def test_write_skew_is_refused(backend: Backend) -> None:
    """Each append writes what the other's condition reads: exactly one of them commits.
    Sequentially (memory, SQLite) the first wins and the second sees its event; racing on
    PostgreSQL, the locks order them the same way."""
    done = await _read_a_and_b_then_append(backend, ("b", "a"))
    assert sorted(type(d).__name__ for d in done) == ["DCBConflictError", "list"]


async def test_a_condition_without_a_token_fails_on_any_match(backend: Backend) -> None:
    store = await backend.open()
    query = Query(QueryItem(tags=["a"]))
    await store.append([noted("a")], AppendCondition(query))
    with pytest.raises(DCBConflictError):
        await store.append([noted("a")], AppendCondition(query))


def test_bad_queries_are_refused() -> None:
    with pytest.raises(InvalidQueryError, match="at least one QueryItem"):
        Query()
    with pytest.raises(InvalidQueryError, match="needs event types or tags"):
        QueryItem()
    with pytest.raises(InvalidTagError, match="every tag must be a str, got int 1"):
        QueryItem(tags=[1])  # type: ignore[list-item]
    with pytest.raises(InvalidTagError, match="collection of str"):
        QueryItem(tags="course:c1")
    with pytest.raises(InvalidTagError, match="non-empty"):
        QueryItem(tags=[""])
    with pytest.raises(InvalidQueryError, match="must be QueryItem"):
        Query("course:c1")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="non-empty str"):
        QueryItem(types=[3])  # type: ignore[list-item]


async def test_bad_tags_and_tokens_are_refused_before_any_write(backend: Backend) -> None:
    store = await backend.open()
    query = Query(QueryItem(tags=["a"]))
    with pytest.raises(InvalidTagError, match="every tag must be a str"):
        await store.append([Tagged(Noted(aggregate_id=uuid.uuid4()), frozenset({"a", 7}))])  # type: ignore[arg-type]
    foreign = ConsistencyToken("memory:another-store", "0")
    with pytest.raises(ForeignTokenError, match="issued by store 'memory:another-store'"):
        await store.append([noted("a")], AppendCondition(query, foreign))
    with pytest.raises(ForeignTokenError, match="not a ConsistencyToken"):
        AppendCondition(query, "0")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="needs a Query"):
        await store.read(QueryItem(tags=["a"]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one event"):
        await store.append([])
    assert (await store.read(query)).events == []  # none of it wrote anything


async def test_a_token_from_another_backend_is_foreign(backend: Backend, tmp_path: Path) -> None:
    store = await backend.open()
    other = await open_backend("memory" if backend.name != "memory" else "sqlite", tmp_path)
    try:
        token = (await (await other.open()).read(Query(QueryItem(tags=["a"])))).token
        with pytest.raises(ForeignTokenError):
            await store.append([noted("a")], AppendCondition(Query(QueryItem(tags=["a"])), token))
    finally:
        await other.close()
