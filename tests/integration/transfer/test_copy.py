"""copy_events: through a merge rule, between every pair of backends, resumably, with the
position map and translate_position; a failing transform is a typed error and writes
nothing of its batch."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transfer_support import (
    REGISTRY,
    CartNoted,
    CartTotals,
    ItemAdded,
    cart_events,
    expected_types,
    fresh_pg_store,
    merge_priced,
    seed,
    sqlite_store,
    stream_types,
)

from eventsource import InMemoryEventStore
from eventsource.exceptions import TransformError
from eventsource.stores.interface import EventStore
from eventsource.stores.records import ExpectedVersion
from eventsource.subscriptions.rebuild import rebuild_projection
from eventsource.transfer import (
    Step,
    TransferProgress,
    TransformResult,
    copy_events,
    per_event,
    translate_position,
)


def _memory() -> InMemoryEventStore:
    return InMemoryEventStore(enable_tracing=False, event_registry=REGISTRY)


async def _totals(store: EventStore) -> dict[Any, tuple[int, int]]:
    projection = CartTotals()
    await rebuild_projection(projection, store, progress_interval=60)
    return projection.carts


@pytest.fixture(
    name="target_kind",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def target_kind_fixture(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """The target's backend, and for PostgreSQL a session factory on a fresh schema."""
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("pg_session_factory")
    return request.param, None


@pytest.fixture
async def target(target_kind: tuple[str, Any], tmp_path: Path) -> Any:
    kind, factory = target_kind
    if kind == "memory":
        yield _memory()
    elif kind == "sqlite":
        async with sqlite_store(tmp_path / "target.db") as store:
            yield store
    else:
        store = fresh_pg_store(factory)
        try:
            yield store
        finally:
            await store.close()


async def test_a_merge_copy_keeps_streams_in_order_and_the_read_model(
    tmp_path: Path, target: EventStore
) -> None:
    async with sqlite_store(tmp_path / "source.db") as source:
        await seed(source, 1500)
        reports: list[TransferProgress] = []
        done = await copy_events(source, target, merge_priced, batch_size=97,
                                 on_progress=reports.append, progress_interval=0)
        assert await stream_types(target) == expected_types(await stream_types(source))
        assert await _totals(target) == await _totals(source)
        assert done.finished
        assert done.events_read == await source.get_global_position()
        assert reports[-1] == done
        assert [r.events_read for r in reports] == sorted(r.events_read for r in reports)
        # Run again: nothing new in the source, nothing written twice.
        again = await copy_events(source, target, merge_priced, batch_size=97)
        assert again.events_written == done.events_written
        assert await stream_types(target) == expected_types(await stream_types(source))


@asynccontextmanager
async def _copied(
    tmp_path: Path, target: EventStore, count: int, batch_size: int
) -> AsyncIterator[EventStore]:
    """A SQLite source of about `count` events, copied into `target` through the merge rule."""
    async with sqlite_store(tmp_path / "source.db") as source:
        await seed(source, count)
        await copy_events(source, target, merge_priced, batch_size=batch_size)
        yield source


async def test_events_appended_to_the_source_after_a_copy_are_copied_by_the_next_run(
    tmp_path: Path, target: EventStore
) -> None:
    async with _copied(tmp_path, target, 200, 50) as source:
        await seed(source, 120, seed_value=8)
        await copy_events(source, target, merge_priced, batch_size=50)
        assert await stream_types(target) == expected_types(await stream_types(source))


async def test_translate_position_never_skips_a_copied_event(
    tmp_path: Path, target: EventStore
) -> None:
    async with _copied(tmp_path, target, 300, 23) as source:
        head = await source.get_global_position()
        origin = {s.event_id: s.global_position async for s in source.read_all()}
        copied = [(s.global_position, origin[s.event_id]) async for s in target.read_all()
                  if s.event_id in origin]  # merged events keep the ItemAdded's id
        for position in range(0, head + 1, 7):
            resume = await translate_position(target, position)
            # No target event copied from a later source event lies at or before `resume`.
            assert all(tgt > resume for tgt, src in copied if src > position)
        assert await translate_position(target, head) == await target.get_global_position()


async def test_a_transform_that_raises_names_the_event_and_writes_nothing_of_its_batch(
    tmp_path: Path, target: EventStore
) -> None:
    async with sqlite_store(tmp_path / "source.db") as source:
        await seed(source, 400)
        page = await source.read_all()
        bad = page.events[250]

        def failing(step: Step) -> TransformResult:
            if step.event.event_id == bad.event_id:
                raise RuntimeError("boom")
            return merge_priced(step)

        with pytest.raises(TransformError) as caught:
            await copy_events(source, target, failing, batch_size=100)
        assert caught.value.event_id == bad.event_id
        assert caught.value.position == bad.global_position
        assert str(bad.event_id) in str(caught.value)
        assert f"position {bad.global_position}" in str(caught.value)
        assert isinstance(caught.value.__cause__, RuntimeError)
        written = [s async for s in target.read_all()]
        # Whole windows of 100 before the failing one: no event of or after the bad window.
        sources = {s.event_id: s.global_position for s in page.events}
        assert written
        assert all(sources[s.event_id] <= 200 for s in written)
        # Resumed with a transform that works: the result is as if it never failed.
        await copy_events(source, target, merge_priced, batch_size=100)
        assert await stream_types(target) == expected_types(await stream_types(source))


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (lambda event: "ItemAdded", "returned a str"),
        (lambda event: [event, 3], "returned a int, not a DomainEvent"),
        (lambda event: ItemAdded(aggregate_id=uuid4(), sku="x"), "keeps every event in its"),
        (lambda event: CartNoted(aggregate_id=event.aggregate_id, note="\ud800"),
         "cannot be stored"),
    ],
)
async def test_a_transform_returning_garbage_is_a_typed_error(
    returned: Any, reason: str
) -> None:
    source, target = _memory(), _memory()
    cart = uuid4()
    await source.append_events(cart, "Cart", [ItemAdded(aggregate_id=cart, sku="a")], 0)
    with pytest.raises(TransformError, match=reason) as caught:
        await copy_events(source, target, per_event(lambda s: returned(s.event)))
    assert caught.value.position == 1
    assert await target.get_global_position() == 0


async def test_a_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await copy_events(_memory(), _memory(), batch_size=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed_value=st.integers(0, 10_000),
    carts=st.integers(1, 12),
    batch_size=st.integers(1, 30),
)
async def test_the_copy_matches_the_model_of_the_merge_rule_for_any_window_size(
    seed_value: int, carts: int, batch_size: int
) -> None:
    rng = random.Random(seed_value)
    source, target = _memory(), _memory()
    pending = [(cart, cart_events(cart, rng)) for cart in (uuid4() for _ in range(carts))]
    while pending:  # interleave the carts' appends
        cart, events = pending.pop(rng.randrange(len(pending)))
        take = rng.randint(1, len(events))
        await source.append_events(cart, "Cart", events[:take], ExpectedVersion.ANY)
        if events[take:]:
            pending.append((cart, events[take:]))
    await copy_events(source, target, merge_priced, batch_size=batch_size)
    assert await stream_types(target) == expected_types(await stream_types(source))
