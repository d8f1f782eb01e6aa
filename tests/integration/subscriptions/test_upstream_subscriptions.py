"""Issue 20, groups 10-12 and 17: the subscription behaviour eventsource-py 0.2.0 documents,
on the real stores (an SQLite file and PostgreSQL): what `start()` reports, where the config
helpers start and how often they checkpoint, pausing, the state machine, `get_health()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from subs_integration_helpers import wait_until
from subscription_crash_child import SubsCrashTick
from upstream_backends import BACKENDS, upstream_backend

from eventsource import DomainEvent
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import (
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
    create_catch_up_config,
    create_live_only_config,
)

Backend = tuple[EventStore, CheckpointRepository]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with upstream_backend(request, tmp_path) as (_kind, store, _sessions, checkpoints):
        yield store, checkpoints


async def _append(store: EventStore, total: int) -> list[UUID]:
    clock = uuid4()
    events = [SubsCrashTick(aggregate_id=clock, n=n) for n in range(total)]
    await store.append_events(clock, "SubsCrashClock", events, 0)
    return [event.event_id for event in events]


class Ticks:
    """Records the ticks it handles (each taking `pace` seconds); raises on those in `failing`."""

    def __init__(self, failing: set[int] | None = None, pace: float = 0.0) -> None:
        self.seen: list[int] = []
        self.failing = failing or set()
        self.pace = pace

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [SubsCrashTick]

    async def handle(self, event: DomainEvent) -> None:
        assert isinstance(event, SubsCrashTick)
        if event.n in self.failing:
            raise ValueError(f"tick {event.n} refused")
        if self.pace:
            await asyncio.sleep(self.pace)
        self.seen.append(event.n)


def _manager(backend: Backend) -> SubscriptionManager:
    store, checkpoints = backend
    manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
    manager.poll_interval = 0.05
    return manager


# -- group 10: start() -------------------------------------------------------------------


async def test_start_reports_a_subscriber_failing_in_catch_up(backend: Backend) -> None:
    await _append(backend[0], 20)
    manager = _manager(backend)
    strict = SubscriptionConfig(start_from="beginning", batch_size=5, continue_on_error=False,
                                circuit_breaker_enabled=False)
    await manager.subscribe(Ticks(failing={0, 1, 2}), strict, name="strict")
    await manager.subscribe(Ticks(), SubscriptionConfig(start_from="beginning"), name="fine")
    try:
        results = await manager.start()
        assert set(results) == {"strict", "fine"}
        assert results["fine"] is None
        error = results["strict"]
        assert isinstance(error, ValueError)
        assert "tick 0 refused" in str(error)
        strict_sub = manager.get_subscription("strict")
        assert strict_sub is not None
        assert strict_sub.state is SubscriptionState.ERROR
    finally:
        await manager.stop()


async def test_start_returns_with_catch_up_under_way(backend: Backend) -> None:
    await _append(backend[0], 30)
    manager = _manager(backend)
    ticks = Ticks(pace=0.01)
    subscription = await manager.subscribe(
        ticks, SubscriptionConfig(start_from="beginning", batch_size=10), name="ticks"
    )
    try:
        assert await manager.start() == {"ticks": None}
        # The first event was handed over before start() returned.
        assert ticks.seen[:1] == [0]
        assert subscription.state in (SubscriptionState.CATCHING_UP, SubscriptionState.LIVE)
        await wait_until(lambda: len(ticks.seen) == 30, 30)
    finally:
        await manager.stop()


# -- group 11: config helpers, initial state, pausing twice ---------------------------------


async def _until_live(manager: SubscriptionManager, ticks: Ticks, config: SubscriptionConfig,
                      expected: int) -> None:
    subscription = await manager.subscribe(ticks, config, name="ticks")
    async with manager:
        await wait_until(lambda: len(ticks.seen) >= expected
                         and subscription.state is SubscriptionState.LIVE, 30)


async def test_catch_up_config_resumes_from_the_checkpoint_after_a_restart(
    backend: Backend,
) -> None:
    await _append(backend[0], 20)
    first = Ticks()
    await _until_live(_manager(backend), first, create_catch_up_config(batch_size=7), 20)
    assert first.seen == list(range(20))
    await _append(backend[0], 5)
    second = Ticks()
    await _until_live(_manager(backend), second, create_catch_up_config(batch_size=7), 5)
    assert len(second.seen) == 5  # only the new events, not the first 20 again


async def test_live_only_config_checkpoints_every_event(backend: Backend) -> None:
    store, checkpoints = backend
    await _append(store, 3)
    saved_before: list[int | None] = []

    class Watching(Ticks):
        async def handle(self, event: DomainEvent) -> None:
            saved_before.append(await checkpoints.get_position("live"))
            await super().handle(event)

    manager = _manager(backend)
    watching = Watching()
    await manager.subscribe(watching, create_live_only_config(), name="live")
    async with manager:
        await _append(store, 4)  # one page of four new events
        await wait_until(lambda: len(watching.seen) == 4, 30)
    # Each event found the one before it checkpointed (positions 4..7 are the new events).
    assert saved_before[1:] == [4, 5, 6]


async def test_a_new_subscription_is_starting_and_pausing_twice_is_refused(
    backend: Backend,
) -> None:
    manager = _manager(backend)
    subscription = await manager.subscribe(Ticks(), SubscriptionConfig(), name="ticks")
    assert subscription.state is SubscriptionState.STARTING
    async with manager:
        assert await manager.pause_subscription("ticks") is True
        assert await manager.pause_subscription("ticks") is False
        # the state changed across the awaits; mypy keeps the type narrowed before them
        assert subscription.state is SubscriptionState.PAUSED  # type: ignore[comparison-overlap]
        assert await manager.resume_subscription("ticks") is True


# -- group 17: get_health() reads like the dict 0.2.0 returned ----------------------------


async def test_get_health_is_dict_compatible(backend: Backend) -> None:
    await _append(backend[0], 5)
    manager = _manager(backend)
    ticks = Ticks()
    await manager.subscribe(ticks, SubscriptionConfig(start_from="beginning"), name="ticks")
    async with manager:
        await wait_until(lambda: len(ticks.seen) == 5
                         and manager.get_health()["status"] == "healthy", 30)
        health = manager.get_health()
        assert health["running"] is True
        assert health["subscription_count"] == 1
        assert "status" in health
        assert health.get("missing") is None
        assert health["subscriptions"][0]["name"] == "ticks"
        assert health["subscriptions"][0]["events_processed"] == 5
        assert dict(health) == health.to_dict()
        with pytest.raises(KeyError):
            health["no such key"]
