"""Issue 20, group 13: 0.2.0's subscriber base classes run under the manager on the real stores
(an SQLite file and PostgreSQL), and `EventFilter.from_config_and_subscriber` lets through what
the manager hands over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from uuid import uuid4

import pytest
from subs_integration_helpers import fresh_schema, wait_until
from subscription_crash_child import SubsCrashTick, open_backend, register

from eventsource import DomainEvent
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager
from eventsource.subscriptions.filtering import EventFilter
from eventsource.subscriptions.subscriber import (
    BaseSubscriber,
    FilteringSubscriber,
    Subscriber,
    SyncSubscriber,
)

Backend = tuple[EventStore, CheckpointRepository]


class UpTock(DomainEvent):
    event_type: str = "UpTock"
    aggregate_type: str = "UpMetronome"
    n: int


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    register()
    from eventsource.events.registry import default_registry

    if default_registry.get_or_none("UpTock") is None:
        default_registry.register(UpTock)
    async with AsyncExitStack() as stack:
        if request.param == "postgresql":
            url = request.getfixturevalue("pg_url")
            location = f"{url} {await stack.enter_async_context(fresh_schema(url))}"
        else:
            location = str(tmp_path / "events.db")
        store, _sessions, checkpoints = await stack.enter_async_context(
            open_backend(request.param, location)
        )
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
