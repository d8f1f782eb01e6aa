"""Issue 20, group 13: 0.2.0's subscriber base classes run under the manager on the real stores
(an SQLite file and PostgreSQL), and `EventFilter.from_config_and_subscriber` lets through what
the manager hands over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from subs_integration_helpers import wait_until
from subscription_crash_child import SubsCrashTick
from upstream_backends import BACKENDS, upstream_backend

from eventsource import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import (
    HealthCheckConfig,
    HealthStatus,
    StartPosition,
    Subscription,
    SubscriptionConfig,
    SubscriptionManager,
)
from eventsource.subscriptions.filtering import EventFilter
from eventsource.subscriptions.flow_control import FlowController
from eventsource.subscriptions.health import ManagerHealthChecker, SubscriptionHealthChecker
from eventsource.subscriptions.subscriber import (
    BaseSubscriber,
    FilteringSubscriber,
    Subscriber,
    SyncSubscriber,
)
from eventsource.subscriptions.transition import StartFromResolver

Backend = tuple[EventStore, CheckpointRepository]


class UpTock(DomainEvent):
    event_type: str = "UpTock"
    aggregate_type: str = "UpMetronome"
    n: int


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if default_registry.get_or_none("UpTock") is None:
        default_registry.register(UpTock)
    async with upstream_backend(request, tmp_path) as (_kind, store, _sessions, checkpoints):
        yield store, checkpoints


async def _fill(store: EventStore) -> None:
    clock, metronome = uuid4(), uuid4()
    await store.append_events(
        clock, "SubsCrashClock", [SubsCrashTick(aggregate_id=clock, n=n) for n in range(6)], 0
    )
    await store.append_events(
        metronome, "UpMetronome", [UpTock(aggregate_id=metronome, n=n) for n in range(4)], 0
    )


class EveryTick(BaseSubscriber):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [SubsCrashTick, UpTock]

    async def handle(self, event: DomainEvent) -> None:
        assert isinstance(event, SubsCrashTick | UpTock)
        self.seen.append((event.event_type, event.n))


class EvenTicks(FilteringSubscriber):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [SubsCrashTick]

    def should_handle(self, event: DomainEvent) -> bool:
        return self.can_handle(event) and isinstance(event, SubsCrashTick) and event.n % 2 == 0

    async def _process_event(self, event: DomainEvent) -> None:
        assert isinstance(event, SubsCrashTick)
        self.seen.append(event.n)


class CountingSync:
    def __init__(self) -> None:
        self.count = 0

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [UpTock]

    def handle(self, event: DomainEvent) -> None:
        self.count += 1


async def test_subscriber_classes_run_under_the_manager(backend: Backend) -> None:
    store, checkpoints = backend
    await _fill(store)
    every, even, plain = EveryTick(), EvenTicks(), CountingSync()
    assert isinstance(every, Subscriber)
    assert isinstance(plain, SyncSubscriber)
    manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
    manager.poll_interval = 0.05
    config = SubscriptionConfig(start_from="beginning")
    await manager.subscribe(every, config, name="every")
    await manager.subscribe(even, config, name="even")
    await manager.subscribe(plain, config, name="plain")
    async with manager:
        await wait_until(lambda: len(every.seen) == 10 and len(even.seen) == 3
                         and plain.count == 4, 30)
    assert every.seen == [("SubsCrashTick", n) for n in range(6)] + [
        ("UpTock", n) for n in range(4)
    ]
    assert even.seen == [0, 2, 4]


async def test_event_filter_passes_what_the_manager_hands_over(backend: Backend) -> None:
    store, checkpoints = backend
    await _fill(store)
    every = EveryTick()
    config = SubscriptionConfig(start_from="beginning", aggregate_types=("UpMetronome",))
    manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
    manager.poll_interval = 0.05
    await manager.subscribe(every, config, name="metronome")
    async with manager:
        await wait_until(lambda: len(every.seen) == 4, 30)
    stored = (await store.read_all()._collect()).events
    selection = EventFilter.from_config_and_subscriber(config, every)
    passed = [(s.event.event_type, getattr(s.event, "n", -1)) for s in stored
              if selection.matches(s.event)]
    assert passed == every.seen == [("UpTock", n) for n in range(4)]
    assert selection.stats.to_dict() == {
        "events_evaluated": 10, "events_matched": 4, "events_skipped": 6, "match_rate": 0.4,
    }


# -- StartFromResolver and the 0.2.0 health checkers ---------------------------------------


class Refuses(BaseSubscriber):
    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [UpTock]

    async def handle(self, event: DomainEvent) -> None:
        raise ValueError("refused")


async def test_start_from_resolver_uses_the_readers_rule(backend: Backend) -> None:
    store, checkpoints = backend
    await _fill(store)
    resolver = StartFromResolver(store, checkpoints)
    every = EveryTick()

    def sub(start: StartPosition) -> Subscription:
        return Subscription("every", SubscriptionConfig(start_from=start), every)

    assert await resolver.resolve(sub("beginning")) == 0
    assert await resolver.resolve(sub("end")) == 10
    assert await resolver.resolve(sub(3)) == 3
    assert await resolver.resolve(sub("checkpoint")) == 0
    manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
    manager.poll_interval = 0.05
    running = await manager.subscribe(every, SubscriptionConfig(start_from="beginning"),
                                      name="every")
    async with manager:
        await wait_until(lambda: len(every.seen) == 10, 30)
    assert await resolver.resolve(sub("checkpoint")) == 10
    assert running.last_processed_position == 10


async def test_health_checkers_agree_with_the_manager(backend: Backend) -> None:
    store, checkpoints = backend
    await _fill(store)
    manager = SubscriptionManager(
        store, None, checkpoints, enable_tracing=False,
        health_check_config=HealthCheckConfig(max_errors_warning=2),
    )
    manager.poll_interval = 0.05
    config = SubscriptionConfig(start_from="beginning", max_retries=0,
                                circuit_breaker_enabled=False)
    refusing = await manager.subscribe(Refuses(), config, name="refuses")
    fine = await manager.subscribe(EveryTick(), config, name="fine")
    async with manager:
        await wait_until(lambda: refusing.events_failed == 4 and fine.events_processed == 10, 30)
        checker = SubscriptionHealthChecker(
            refusing, HealthCheckConfig(max_errors_warning=2),
            error_handler=manager.get_error_handler("refuses"),
            flow_controller=FlowController(max_in_flight=1),
        )
        result = checker.check()
        own = manager.check_health("refuses")
        assert own is not None
        assert result.overall_status is HealthStatus.DEGRADED
        assert result.subscription_name == "refuses"
        assert result.indicators[: len(own.indicators)] == own.indicators
        assert result.indicators[-1].name == "backpressure"
        overall = ManagerHealthChecker([refusing, fine], HealthCheckConfig(max_errors_warning=2),
                                       {"refuses": checker}).check()
    assert overall["status"] == "degraded"
    assert (overall["healthy_count"], overall["degraded_count"]) == (1, 1)
    assert overall["subscriptions"]["fine"]["status"] == "healthy"
