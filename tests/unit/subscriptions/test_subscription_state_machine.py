"""Issue 13 item 3 and API parity group 12: a subscription changes state only through
`transition_to`, which follows one table (`VALID_TRANSITIONS`) and raises `TransitionError` on
any other move; pause and resume go through it too."""

from __future__ import annotations

import asyncio
import itertools
from uuid import uuid4

import pytest
from subs_helpers import Recorder, eventually, place_orders

from eventsource import InMemoryCheckpointRepository, InMemoryEventStore
from eventsource.subscriptions import (
    VALID_TRANSITIONS,
    PauseReason,
    Subscription,
    SubscriptionConfig,
    SubscriptionError,
    SubscriptionManager,
    SubscriptionState,
    SubscriptionStateError,
    TransitionError,
    is_valid_transition,
)

S = SubscriptionState
LEGAL = {
    S.STARTING: {S.CATCHING_UP, S.LIVE, S.STOPPED, S.ERROR},
    S.CATCHING_UP: {S.LIVE, S.PAUSED, S.STOPPED, S.ERROR},
    S.LIVE: {S.CATCHING_UP, S.PAUSED, S.STOPPED, S.ERROR},
    S.PAUSED: {S.CATCHING_UP, S.LIVE, S.STOPPED, S.ERROR},
    S.STOPPED: {S.STARTING},
    S.ERROR: {S.STARTING},
}
# How to bring a new subscription (STARTING) into each state by legal moves.
ROUTE = {
    S.STARTING: [],
    S.CATCHING_UP: [S.CATCHING_UP],
    S.LIVE: [S.LIVE],
    S.PAUSED: [S.LIVE, S.PAUSED],
    S.STOPPED: [S.STOPPED],
    S.ERROR: [S.ERROR],
}
MOVES = list(itertools.product(S, S))


def _subscription(state: SubscriptionState = S.STARTING) -> Subscription:
    subscription = Subscription("orders", SubscriptionConfig(), Recorder())
    for step in ROUTE[state]:
        subscription.transition_to(step)
    assert subscription.state is state
    return subscription


def test_the_table_is_the_documented_one() -> None:
    assert {state: set(targets) for state, targets in VALID_TRANSITIONS.items()} == LEGAL
    assert all(is_valid_transition(a, b) == (b in LEGAL[a]) for a, b in MOVES)


@pytest.mark.parametrize(("source", "target"), [m for m in MOVES if m[1] in LEGAL[m[0]]])
async def test_a_legal_move_is_made(source: SubscriptionState, target: SubscriptionState) -> None:
    subscription = _subscription(source)
    await subscription.transition_to(target)  # awaitable, as 0.2.0's coroutine was
    assert (subscription.state, subscription.previous_state) == (target, source)


@pytest.mark.parametrize(("source", "target"), [m for m in MOVES if m[1] not in LEGAL[m[0]]])
def test_an_illegal_move_raises_and_changes_nothing(
    source: SubscriptionState, target: SubscriptionState
) -> None:
    subscription = _subscription(source)
    before = subscription.previous_state
    with pytest.raises(TransitionError) as raised:
        subscription.transition_to(target)
    error = raised.value
    assert (error.subscription_name, error.from_state, error.to_state) == (
        "orders", source, target
    )
    assert f"Cannot transition from {source.value} to {target.value}" in str(error)
    assert "Valid transitions:" in str(error)
    assert isinstance(error, SubscriptionStateError)
    assert isinstance(error, SubscriptionError)
    assert (subscription.state, subscription.previous_state) == (source, before)


def test_the_state_cannot_be_assigned() -> None:
    subscription = _subscription()
    with pytest.raises(AttributeError):
        subscription.state = S.LIVE  # type: ignore[misc]
    assert subscription.state is S.STARTING


async def test_pause_remembers_why_when_and_from_where_and_resume_goes_back() -> None:
    subscription = _subscription(S.LIVE)
    assert await subscription.wait_if_paused() is False
    await subscription.pause(PauseReason.MAINTENANCE)
    assert subscription.state is S.PAUSED
    assert subscription.pause_reason is PauseReason.MAINTENANCE
    assert subscription.state_before_pause is S.LIVE
    assert subscription.paused_at is not None
    assert (subscription.pause_duration_seconds or 0.0) >= 0.0
    waiter = asyncio.ensure_future(subscription.wait_if_paused())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await subscription.resume()
    assert await waiter is True
    assert subscription.state is S.LIVE  # type: ignore[comparison-overlap]  # changed across the await
    assert (subscription.pause_reason, subscription.paused_at) == (None, None)


@pytest.mark.parametrize("state", [S.STARTING, S.PAUSED, S.STOPPED, S.ERROR])
async def test_pause_is_refused_unless_catching_up_or_live(state: SubscriptionState) -> None:
    subscription = _subscription(state)
    with pytest.raises(SubscriptionStateError):
        await subscription.pause()
    assert subscription.state is state


async def test_resume_is_refused_unless_paused() -> None:
    subscription = _subscription(S.CATCHING_UP)
    with pytest.raises(SubscriptionStateError):
        await subscription.resume()
    assert subscription.state is S.CATCHING_UP


async def test_set_error_counts_the_failure_and_ends_in_error() -> None:
    subscription = _subscription(S.LIVE)
    error = ValueError("boom")
    await subscription.set_error(error)
    assert (subscription.state, subscription.last_error, subscription.events_failed) == (
        S.ERROR, error, 1
    )
    assert subscription.last_error_at is not None


async def test_recorded_progress_shows_in_the_status() -> None:
    subscription = _subscription(S.LIVE)
    event_id = uuid4()
    await subscription.update_max_position(100)
    await subscription.record_event_processed(position=40, event_id=event_id,
                                              event_type="OrderPlaced")
    await subscription.record_event_failed(RuntimeError("later"))
    status = subscription.get_status()
    assert (status.position, status.lag_events, status.events_processed, status.events_failed) == (
        40, 60, 1, 1
    )
    assert (subscription.last_event_id, subscription.last_event_type) == (event_id, "OrderPlaced")
    assert status.last_processed_at is not None
    assert "pos=40" in str(subscription)


async def test_a_stopped_manager_starts_its_subscriptions_again() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    first = await place_orders(store, 2)
    manager = SubscriptionManager(
        store, None, InMemoryCheckpointRepository(enable_tracing=False), enable_tracing=False
    )
    manager.poll_interval = 0.05
    recorder = Recorder()
    subscription = await manager.subscribe(recorder, SubscriptionConfig())  # from checkpoint
    async with manager:
        await eventually(lambda: subscription.state is S.LIVE)
    assert subscription.state is S.STOPPED
    later = await place_orders(store, 2)
    async with manager:
        await eventually(lambda: recorder.seen == first + later)
        assert subscription.state is S.LIVE  # type: ignore[comparison-overlap]  # changed across the await
    assert subscription.state is S.STOPPED


async def test_the_manager_pauses_only_a_running_subscription() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    manager = SubscriptionManager(
        store, None, InMemoryCheckpointRepository(enable_tracing=False), enable_tracing=False
    )
    manager.poll_interval = 0.05
    subscription = await manager.subscribe(Recorder(), name="orders")
    assert await manager.pause_subscription("orders") is False  # not started
    async with manager:
        await eventually(lambda: subscription.state is S.LIVE)
        assert await manager.pause_subscription("orders", PauseReason.BACKPRESSURE) is True
        assert subscription.state_before_pause is S.LIVE
        assert await manager.resume_subscription("orders") is True
        assert subscription.state is S.LIVE
    assert await manager.pause_subscription("orders") is False  # stopped


async def test_failures_show_in_the_subscriptions_recent_errors() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 4)

    def fail(event: object, _attempt: int) -> Exception | None:
        return ValueError("bad order") if getattr(event, "event_id", None) in ids[1:3] else None

    manager = SubscriptionManager(
        store, None, InMemoryCheckpointRepository(enable_tracing=False), enable_tracing=False
    )
    subscription = await manager.subscribe(
        Recorder(fail=fail), SubscriptionConfig(start_from="beginning"), name="orders"
    )
    assert (subscription.recent_errors, subscription.recent_errors_count) == ([], 0)
    async with manager:
        await eventually(lambda: subscription.state is S.LIVE)
    assert [e.event_id for e in subscription.recent_errors] == ids[1:3]
    assert {e.error_type for e in subscription.recent_errors} == {"ValueError"}
    assert subscription.get_status().recent_errors_count == 2
