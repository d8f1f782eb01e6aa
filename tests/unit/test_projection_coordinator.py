"""Issue 20, group 3: eventsource-py 0.2.0's projection fan-out helpers, from their documented
behaviour (`ProjectionRegistry`, `ProjectionCoordinator`, `SubscriberRegistry`,
`SyncProjection`, `EventHandlerBase`, `eventsource.projections.protocols`). The replay test
reads its events back from an SQLite file."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from uuid import uuid4

import pytest

from eventsource import (
    DomainEvent,
    EventRegistry,
    InMemoryCheckpointRepository,
    InMemoryDLQRepository,
    SQLiteEventStore,
)
from eventsource.exceptions import InvalidHandlerError, ProjectionError
from eventsource.projections import (
    DeclarativeProjection,
    EventHandlerBase,
    NoRetryPolicy,
    Projection,
    ProjectionCoordinator,
    ProjectionRegistry,
    SubscriberRegistry,
    SyncProjection,
    handles,
)


class _AccountEvent(DomainEvent):
    aggregate_type: str = "CoordAccount"


class Opened(_AccountEvent):
    event_type: str = "CoordOpened"
    owner: str = "ann"


class Deposited(_AccountEvent):
    event_type: str = "CoordDeposited"
    amount: int = 1


class BigDeposited(Deposited):
    event_type: str = "CoordBigDeposited"


class Log(Projection):
    """An async projection remembering what it saw."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.seen: list[str] = []
        self.resets = 0
        self.fail_on = fail_on

    async def handle(self, event: DomainEvent) -> None:
        if isinstance(event, Deposited) and event.amount == self.fail_on:
            raise ValueError(f"cannot take {event.amount}")
        self.seen.append(event.event_type)

    async def reset(self) -> None:
        self.resets += 1
        self.seen.clear()


class Counter(SyncProjection):
    def __init__(self) -> None:
        self.count = 0

    def handle(self, event: DomainEvent) -> None:
        if isinstance(event, Deposited):
            self.count += event.amount

    def reset(self) -> None:
        self.count = 0


class DepositAlerts(EventHandlerBase):
    def __init__(self) -> None:
        self.alerts: list[int] = []

    def can_handle(self, event: DomainEvent) -> bool:
        return isinstance(event, Deposited) and event.amount >= 100

    async def handle(self, event: DomainEvent) -> None:
        assert isinstance(event, Deposited)
        self.alerts.append(event.amount)


class Balances(DeclarativeProjection):
    def __init__(self, dlq: InMemoryDLQRepository | None = None) -> None:
        super().__init__(InMemoryCheckpointRepository(), dlq or InMemoryDLQRepository(),
                         retry_policy=NoRetryPolicy())
        self.total = 0

    @handles(Deposited)
    async def _deposited(self, event: Deposited) -> None:
        self.total += event.amount

    @handles(BigDeposited)
    async def _big(self, event: BigDeposited) -> None:
        self.total += event.amount

    async def _truncate_read_models(self) -> None:
        self.total = 0


def _history() -> list[DomainEvent]:
    account = uuid4()
    return [
        Opened(aggregate_id=account, aggregate_version=1),
        Deposited(aggregate_id=account, aggregate_version=2, amount=5),
        BigDeposited(aggregate_id=account, aggregate_version=3, amount=100),
    ]


def test_the_contracts_are_abstract() -> None:
    for contract in (SyncProjection, EventHandlerBase):
        with pytest.raises(TypeError):
            contract()  # type: ignore[abstract]

    class HalfDone(SyncProjection):
        def handle(self, event: DomainEvent) -> None: ...

    with pytest.raises(TypeError):
        HalfDone()  # type: ignore[abstract]


async def test_registry_hands_each_event_to_projections_and_willing_handlers() -> None:
    registry = ProjectionRegistry(enable_tracing=False)
    log, counter, alerts = Log(), Counter(), DepositAlerts()
    registry.register_projection(log)
    registry.register_projection(counter)
    registry.register_handler(alerts)
    assert (registry.get_projection_count(), registry.get_handler_count()) == (2, 1)
    assert registry.projections == [log, counter]
    assert registry.handlers == [alerts]

    await registry.dispatch_many(_history())
    assert log.seen == ["CoordOpened", "CoordDeposited", "CoordBigDeposited"]
    assert counter.count == 105
    assert alerts.alerts == [100]  # can_handle refused the others

    await registry.reset_all()
    assert (log.seen, log.resets, counter.count) == ([], 1, 0)
    assert registry.unregister_projection(counter)
    assert not registry.unregister_projection(counter)
    assert registry.unregister_handler(alerts)
    assert not registry.unregister_handler(alerts)
    assert (registry.get_projection_count(), registry.get_handler_count()) == (1, 0)


async def test_registry_delivers_concurrently() -> None:
    """The first projection waits for the second to have started: only a concurrent dispatch
    lets both finish."""
    second_started = asyncio.Event()

    class WaitsForTheOther(Log):
        async def handle(self, event: DomainEvent) -> None:
            await second_started.wait()
            await super().handle(event)

    class Second(Log):
        async def handle(self, event: DomainEvent) -> None:
            second_started.set()
            await super().handle(event)

    registry = ProjectionRegistry()
    first, second = WaitsForTheOther(), Second()
    registry.register_projection(first)
    registry.register_projection(second)
    await asyncio.wait_for(registry.dispatch(_history()[0]), 10)  # a guard against a hang
    assert first.seen == second.seen == ["CoordOpened"]


async def test_one_failing_projection_does_not_keep_the_event_from_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ProjectionRegistry()
    failing, healthy = Log(fail_on=5), Log()
    registry.register_projection(failing)
    registry.register_projection(healthy)
    events = _history()
    with caplog.at_level(logging.ERROR, logger="eventsource.projections.coordinator"):
        await registry.dispatch_many(events)
    assert healthy.seen == ["CoordOpened", "CoordDeposited", "CoordBigDeposited"]
    assert failing.seen == ["CoordOpened", "CoordBigDeposited"]
    [record] = [r for r in caplog.records if r.name == "eventsource.projections.coordinator"]
    assert str(events[1].event_id) in record.getMessage()
    assert "Log" in record.getMessage()
    assert "cannot take 5" in record.getMessage()
    assert record.exc_info is not None


def test_registries_refuse_what_cannot_handle_events() -> None:
    registry = ProjectionRegistry()
    with pytest.raises(InvalidHandlerError, match="reset"):
        registry.register_projection(object())
    with pytest.raises(TypeError, match="can_handle"):
        registry.register_handler(Log())  # type: ignore[arg-type]
    with pytest.raises(InvalidHandlerError, match="subscribed_to"):
        SubscriberRegistry().register(Log())  # type: ignore[arg-type]
    assert registry.get_projection_count() == registry.get_handler_count() == 0


async def test_coordinator_rebuilds_and_catches_up() -> None:
    registry = ProjectionRegistry()
    log, counter = Log(), Counter()
    registry.register_projection(log)
    registry.register_projection(counter)
    coordinator = ProjectionCoordinator(registry=registry, batch_size=50,
                                        poll_interval_seconds=0.5, enable_tracing=False)
    events = _history()
    assert await coordinator.dispatch_events(events) == 3
    assert counter.count == 105

    assert await coordinator.rebuild_all(events) == 3  # reset first: nothing counted twice
    assert (counter.count, log.resets) == (105, 1)
    assert log.seen == ["CoordOpened", "CoordDeposited", "CoordBigDeposited"]

    assert await coordinator.rebuild_projection(counter, events[1:2]) == 1
    assert counter.count == 5
    assert await coordinator.catchup(counter, events[2:]) == 1
    assert counter.count == 105
    assert log.resets == 1  # the single-projection calls left it alone

    assert coordinator.get_projection_info() == [
        {"name": "Log", "type": "Log"}, {"name": "Counter", "type": "Counter"},
    ]
    health = await coordinator.health_check()
    assert health == {
        "status": "healthy", "projection_count": 2, "handler_count": 0,
        "projections": ["Log", "Counter"], "handlers": [], "batch_size": 50,
        "poll_interval_seconds": 0.5,
    }


async def test_a_rebuild_stops_at_a_failing_event() -> None:
    coordinator = ProjectionCoordinator(ProjectionRegistry())
    failing = Log(fail_on=5)
    with pytest.raises(ValueError, match="cannot take 5"):
        await coordinator.rebuild_projection(failing, _history())
    assert (failing.resets, failing.seen) == (1, ["CoordOpened"])


async def test_subscriber_registry_chooses_by_declared_class() -> None:
    balances = Balances()

    class Deposits:
        """A plain subscriber with a synchronous handle, declaring the base class only."""

        def __init__(self) -> None:
            self.amounts: list[int] = []

        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [Deposited]

        def handle(self, event: DomainEvent) -> None:
            assert isinstance(event, Deposited)
            self.amounts.append(event.amount)

    deposits = Deposits()
    registry = SubscriberRegistry()
    registry.register(balances)
    registry.register(deposits)
    assert registry.get_subscribers_for(Opened) == []
    assert registry.get_subscribers_for(Deposited) == [balances, deposits]
    assert registry.get_subscribers_for(BigDeposited) == [balances, deposits]  # a subclass
    events = _history()
    await registry.dispatch_many(events)
    assert (balances.total, deposits.amounts) == (105, [5, 100])
    assert await balances.get_checkpoint() == str(events[2].event_id)
    assert registry.unregister(deposits)
    assert not registry.unregister(deposits)
    assert registry.get_subscribers_for(Deposited) == [balances]


async def test_a_failing_subscriber_dead_letters_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Picky(Balances):
        @handles(Deposited)
        async def _deposited(self, event: Deposited) -> None:
            raise ValueError("no fives")

    dlq = InMemoryDLQRepository()
    picky, plain = Picky(dlq), Balances()
    registry = SubscriberRegistry()
    registry.register(picky)
    registry.register(plain)
    with caplog.at_level(logging.ERROR, logger="eventsource.projections.coordinator"):
        await registry.dispatch_many(_history())
    assert (picky.total, plain.total) == (100, 105)
    [record] = [r for r in caplog.records if r.name == "eventsource.projections.coordinator"]
    assert isinstance(record.exc_info and record.exc_info[1], ProjectionError)
    [dead] = await dlq.get_failed_events()
    assert dead.event_type == "CoordDeposited"


async def test_a_projection_rebuilt_from_an_sqlite_store(tmp_path: Path) -> None:
    registry = EventRegistry()
    for cls in (Opened, Deposited, BigDeposited):
        registry.register(cls)
    events = _history()
    async with SQLiteEventStore(str(tmp_path / "events.db"), event_registry=registry) as store:
        await store.initialize()
        await store.append_events(events[0].aggregate_id, "CoordAccount", events, 0)
        stored = [s.event async for s in store.read_all()]
    balances, counter = Balances(), Counter()
    coordinator = ProjectionCoordinator(ProjectionRegistry())
    assert await coordinator.rebuild_projection(balances, stored) == 3
    assert await coordinator.rebuild_projection(counter, stored) == 3
    assert (balances.total, counter.count) == (105, 105)
    assert [type(e) for e in stored] == [Opened, Deposited, BigDeposited]
