"""SubscriptionManager lifecycle: tutorial behaviours, start positions, resume, pause, health,
shutdown (API.md §7.2, §7.3, §7.5; §15 items 35-38)."""

from __future__ import annotations

import asyncio
import os
import signal
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel
from subs_helpers import (
    CountingCheckpointRepository,
    OrderPlaced,
    OrderShipped,
    Recorder,
    UserRegistered,
    eventually,
    place_orders,
)

from eventsource import (
    AggregateRepository,
    AggregateRoot,
    DeclarativeProjection,
    DomainEvent,
    InMemoryCheckpointRepository,
    InMemoryEventBus,
    InMemoryEventStore,
    handles,
)
from eventsource.subscriptions import (
    CheckpointStrategy,
    PauseReason,
    ShutdownPhase,
    ShutdownResult,
    SubscriptionAlreadyExistsError,
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)
from eventsource.subscriptions.config import StartPosition


def make_manager(
    store: InMemoryEventStore | None = None,
    checkpoints: InMemoryCheckpointRepository | None = None,
    bus: InMemoryEventBus | None = None,
    **kwargs: object,
) -> SubscriptionManager:
    return SubscriptionManager(
        store or InMemoryEventStore(enable_tracing=False),
        bus or InMemoryEventBus(enable_tracing=False),
        checkpoints or InMemoryCheckpointRepository(enable_tracing=False),
        enable_tracing=False,
        **kwargs,  # type: ignore[arg-type]
    )


BEGINNING = SubscriptionConfig(start_from="beginning")


# -- tutorial 13 ---------------------------------------------------------------------------


class OrderState(BaseModel):
    placed: bool = False


class Order(AggregateRoot[OrderState]):
    aggregate_type = "Order"

    def _get_initial_state(self) -> OrderState:
        return OrderState()

    def _apply(self, event: DomainEvent) -> None:
        self._state = OrderState(placed=True)

    def place(self, total: float) -> None:
        self.apply_event(OrderPlaced(aggregate_id=self.aggregate_id,
                                     aggregate_version=self.get_next_version(), total=total))


class OrderDashboard(DeclarativeProjection):
    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[UUID, int] = {}

    @handles(OrderPlaced)
    async def _placed(self, event: OrderPlaced) -> None:
        self.orders[event.aggregate_id] = self.orders.get(event.aggregate_id, 0) + 1


async def test_subscription_name_defaults_to_the_class_name() -> None:
    """§15 item 35."""
    manager = make_manager()
    named = await manager.subscribe(OrderDashboard(), name="order-dashboard")
    unnamed = await manager.subscribe(OrderDashboard())
    assert named.name == "order-dashboard"
    assert unnamed.name == "OrderDashboard"
    assert manager.subscription_names == ["order-dashboard", "OrderDashboard"]
    assert manager.subscription_count == 2
    assert manager.get_subscription("OrderDashboard") is unnamed
    assert manager.get_subscription("missing") is None
    with pytest.raises(SubscriptionAlreadyExistsError) as caught:
        await manager.subscribe(OrderDashboard())
    assert caught.value.name == "OrderDashboard"


async def test_catch_up_then_live_each_order_once() -> None:
    """§15 item 36: three orders before start(), two after, the repository publishing."""
    store = InMemoryEventStore(enable_tracing=False)
    bus = InMemoryEventBus(enable_tracing=False)
    repo = AggregateRepository(store, Order, "Order", event_publisher=bus, enable_tracing=False)

    async def place() -> None:
        order = repo.create_new(uuid4())
        order.place(10.0)
        await repo.save(order)

    for _ in range(3):
        await place()
    manager = make_manager(store, bus=bus)
    dashboard = OrderDashboard()
    subscription = await manager.subscribe(dashboard, SubscriptionConfig(start_from="beginning"))
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        assert len(dashboard.orders) == 3
        for _ in range(2):
            await place()
        await eventually(lambda: len(dashboard.orders) == 5)
        await asyncio.sleep(0.05)
    assert len(dashboard.orders) == 5
    assert set(dashboard.orders.values()) == {1}
    assert subscription.events_processed == 5
    assert subscription.state is SubscriptionState.STOPPED


async def test_healthy_ready_and_alive_with_one_idle_subscription() -> None:
    """§15 item 38."""
    manager = make_manager()
    subscription = await manager.subscribe(OrderDashboard(), BEGINNING)
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        health = await manager.health_check()
        assert health.status == "healthy"
        assert health.running is True
        assert health.subscription_count == 1
        assert health.healthy_count == 1
        assert health.subscriptions[0].state == "live"
        assert (await manager.readiness_check()).ready is True
        assert (await manager.readiness_check()).reason == "Manager is ready"
        liveness = await manager.liveness_check()
        assert liveness.alive is True
        assert liveness.reason == "Manager is alive and responsive"
        assert health.to_dict()["subscriptions"][0]["name"] == "OrderDashboard"
    assert (await manager.readiness_check()).ready is False
    assert (await manager.health_check()).status == "degraded"  # stopped subscription


async def test_health_is_unknown_without_subscriptions() -> None:
    manager = make_manager()
    health = await manager.health_check()
    assert (health.status, health.running, health.uptime_seconds) == ("unknown", False, 0.0)


async def test_subscribe_on_a_running_manager_starts_at_once() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 4)
    manager = make_manager(store)
    async with manager:
        recorder = Recorder()
        subscription = await manager.subscribe(recorder, BEGINNING)
        await eventually(lambda: recorder.seen == ids)
        assert subscription.is_running


# -- start positions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_from", "expected"),
    [("beginning", slice(0, None)), ("end", slice(5, None)), (3, slice(3, None))],
)
async def test_start_positions(start_from: StartPosition, expected: slice) -> None:
    store = InMemoryEventStore(enable_tracing=False)
    before = await place_orders(store, 5)
    manager = make_manager(store)
    recorder = Recorder()
    await manager.subscribe(recorder, SubscriptionConfig(start_from=start_from))
    async with manager:
        after = await place_orders(store, 2)
        everything = before + after
        await eventually(lambda: recorder.seen == everything[expected])
        await asyncio.sleep(0.05)
    assert recorder.seen == everything[expected]


async def test_checkpoint_start_without_a_checkpoint_reads_everything() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)
    recorder = Recorder()
    manager = make_manager(store)
    await manager.subscribe(recorder)  # start_from="checkpoint" by default
    async with manager:
        await eventually(lambda: recorder.seen == ids)


async def test_restart_resumes_from_the_checkpoint_without_duplicates() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    checkpoints = InMemoryCheckpointRepository(enable_tracing=False)
    first_ids = await place_orders(store, 7)
    first = Recorder()
    manager = make_manager(store, checkpoints)
    subscription = await manager.subscribe(first, SubscriptionConfig(batch_size=3), name="orders")
    async with manager:
        await eventually(lambda: first.seen == first_ids)
    assert await checkpoints.get_position("orders") == 7
    assert subscription.last_processed_position == 7

    later_ids = await place_orders(store, 4)  # written while nothing runs
    second = Recorder()
    manager = make_manager(store, checkpoints)
    await manager.subscribe(second, SubscriptionConfig(batch_size=3), name="orders")
    async with manager:
        more = await place_orders(store, 2)
        await eventually(lambda: second.seen == later_ids + more)
        await asyncio.sleep(0.05)
    assert second.seen == later_ids + more
    assert await checkpoints.get_position("orders") == 13
    assert await checkpoints.get_cursor("orders") == "13"


async def test_filters_skip_events_but_advance_the_position() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    checkpoints = InMemoryCheckpointRepository(enable_tracing=False)
    wanted = await place_orders(store, 2)
    user_id = uuid4()
    await store.append_events(user_id, "User", [UserRegistered(aggregate_id=user_id)], 0)
    order_id = uuid4()
    shipped = OrderShipped(aggregate_id=order_id, aggregate_type="Shipment")
    await store.append_events(order_id, "Shipment", [shipped], 0)
    recorder = Recorder(types=[OrderPlaced, OrderShipped, UserRegistered])
    manager = make_manager(store, checkpoints)
    config = SubscriptionConfig(start_from="beginning", event_types=(OrderPlaced, OrderShipped),
                                aggregate_types=("Order",))
    subscription = await manager.subscribe(recorder, config, name="filtered")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert recorder.seen == wanted
    assert subscription.events_processed == 2
    assert subscription.last_processed_position == 4
    assert await checkpoints.get_position("filtered") == 4


async def test_subscribed_to_is_the_default_filter() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 2)
    user_id = uuid4()
    await store.append_events(user_id, "User", [UserRegistered(aggregate_id=user_id)], 0)
    recorder = Recorder(types=[OrderPlaced])
    manager = make_manager(store)
    subscription = await manager.subscribe(recorder, BEGINNING)
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert recorder.seen == ids


async def test_sync_handle_is_supported() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)
    seen: list[UUID] = []

    class SyncSubscriber:
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [OrderPlaced]

        def handle(self, event: DomainEvent) -> None:
            seen.append(event.event_id)

    manager = make_manager(store)
    await manager.subscribe(SyncSubscriber(), BEGINNING)
    async with manager:
        await eventually(lambda: seen == ids)


# -- checkpoints ---------------------------------------------------------------------------


async def test_every_batch_saves_once_per_page() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 250)
    checkpoints = CountingCheckpointRepository()
    manager = make_manager(store, checkpoints)
    config = SubscriptionConfig(start_from="beginning", batch_size=100,
                                checkpoint_strategy="every_batch")  # type: ignore[arg-type]
    subscription = await manager.subscribe(Recorder(), config, name="orders")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        # The first page after start() is one event (start() waits for it), then pages of 100.
        assert checkpoints.saves == [(1, "1"), (101, "101"), (201, "201"), (250, "250")]
    assert len(checkpoints.saves) == 4  # nothing new to save at stop


async def test_every_event_saves_each_event() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 5)
    checkpoints = CountingCheckpointRepository()
    manager = make_manager(store, checkpoints)
    config = SubscriptionConfig(start_from="beginning", batch_size=2,
                                checkpoint_strategy=CheckpointStrategy.EVERY_EVENT)
    subscription = await manager.subscribe(Recorder(), config, name="orders")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert [p for p, _ in checkpoints.saves] == [1, 2, 3, 4, 5]
    # the cursor is saved where it is known: at the end of each page (the first page after
    # start() is one event, then pages of 2: [1], [2, 3], [4, 5])
    assert checkpoints.saves[2] == (3, "3")
    assert checkpoints.saves[1] == (2, None)


async def test_periodic_saves_at_stop() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 30)
    checkpoints = CountingCheckpointRepository()
    manager = make_manager(store, checkpoints)
    config = SubscriptionConfig(start_from="beginning", batch_size=10,
                                checkpoint_strategy=CheckpointStrategy.PERIODIC,
                                checkpoint_interval_seconds=3600)
    subscription = await manager.subscribe(Recorder(), config, name="orders")
    await manager.start()
    await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert checkpoints.saves == []
    result = await manager.stop()
    assert checkpoints.saves == [(30, "30")]
    assert result.checkpoints_saved == 1


# -- pause / resume ------------------------------------------------------------------------


async def test_pause_keeps_position_and_resume_delivers_the_rest() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    first = await place_orders(store, 3)
    recorder = Recorder()
    manager = make_manager(store)
    subscription = await manager.subscribe(recorder, BEGINNING, name="orders")
    async with manager:
        await eventually(lambda: recorder.seen == first)
        assert await manager.pause_subscription("orders") is True
        assert subscription.state is SubscriptionState.PAUSED
        assert subscription.pause_reason is PauseReason.MANUAL
        assert manager.paused_subscription_names == ["orders"]
        assert manager.paused_subscriptions == [subscription]
        later = await place_orders(store, 3)
        await asyncio.sleep(0.1)
        assert recorder.seen == first
        assert await manager.resume_subscription("orders") is True
        await eventually(lambda: recorder.seen == first + later)
        # the state changed across the awaits; mypy keeps the type narrowed before them
        assert subscription.state is SubscriptionState.LIVE  # type: ignore[comparison-overlap]
        assert await manager.resume_subscription("orders") is False
        assert await manager.pause_all(PauseReason.MAINTENANCE) == {"orders": True}
        assert subscription.pause_reason is PauseReason.MAINTENANCE
        assert (await manager.health_check()).status == "degraded"
        assert await manager.resume_all() == {"orders": True}
    assert await manager.pause_subscription("missing") is False


async def test_pause_mid_page_resumes_with_the_rest_of_the_page() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 10)
    manager = make_manager(store)
    gate = asyncio.Event()

    class Slow(Recorder):
        async def handle(self, event: DomainEvent) -> None:
            await super().handle(event)
            if len(self.seen) == 4:
                await gate.wait()

    recorder = Slow()
    await manager.subscribe(recorder, BEGINNING, name="slow")
    async with manager:
        await eventually(lambda: len(recorder.seen) == 4)
        await manager.pause_subscription("slow")
        gate.set()
        await asyncio.sleep(0.05)
        assert recorder.seen == ids[:4]
        await manager.resume_subscription("slow")
        await eventually(lambda: recorder.seen == ids)


# -- shutdown ------------------------------------------------------------------------------


async def test_stop_when_not_running_reports_stopped_with_zero_counts() -> None:
    result = await make_manager().stop()
    assert result == ShutdownResult(ShutdownPhase.STOPPED, 0.0, 0, 0)


async def test_stop_result_fields_and_state() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 5)
    manager = make_manager(store)
    subscription = await manager.subscribe(Recorder(), BEGINNING)
    results = await manager.start()
    assert results == {"Recorder": None}
    assert await manager.start() == {}
    assert manager.is_running
    await eventually(lambda: subscription.events_processed == 5)
    result = await manager.stop()
    assert result.phase is ShutdownPhase.STOPPED
    assert result.phase.value == "stopped"
    assert result.subscriptions_stopped == 1
    assert result.events_drained == 0
    assert result.duration_seconds >= 0
    assert result.forced is False
    assert manager.last_shutdown_result is result
    assert manager.shutdown_phase is ShutdownPhase.STOPPED
    assert not manager.is_running
    assert subscription.state is SubscriptionState.STOPPED


async def test_stop_drains_the_page_in_progress() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 5)
    started = asyncio.Event()

    class Slow(Recorder):
        async def handle(self, event: DomainEvent) -> None:
            started.set()
            await asyncio.sleep(0.02)
            await super().handle(event)

    recorder = Slow()
    manager = make_manager(store)
    await manager.subscribe(recorder, SubscriptionConfig(start_from="beginning", batch_size=10))
    await manager.start()  # returns once the first event (a page of its own) is handled
    await started.wait()
    result = await manager.stop()
    assert recorder.seen == ids
    assert result.in_flight_at_start == 4
    assert result.events_drained == 4
    assert result.events_not_drained == 0


async def test_stop_forces_a_stuck_subscriber_and_keeps_its_checkpoint() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 3)
    checkpoints = InMemoryCheckpointRepository(enable_tracing=False)

    class Stuck(Recorder):
        async def handle(self, event: DomainEvent) -> None:
            if len(self.seen) == 2:
                await asyncio.Event().wait()
            await super().handle(event)

    manager = make_manager(store, checkpoints, drain_timeout=0.2)
    recorder = Stuck()
    await manager.subscribe(recorder, BEGINNING, name="stuck")
    await manager.start()
    await eventually(lambda: len(recorder.seen) == 2)
    result = await manager.stop()
    assert result.forced is True
    assert result.phase is ShutdownPhase.FORCED
    assert result.events_not_drained == 1
    assert await checkpoints.get_position("stuck") == 2  # the stuck event is not skipped


async def test_run_until_shutdown_stops_on_request_and_on_sigterm() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 2)
    recorder = Recorder()
    manager = make_manager(store)
    await manager.subscribe(recorder, BEGINNING)
    runner = asyncio.create_task(manager.run_until_shutdown())
    await eventually(lambda: recorder.seen == ids)
    manager.request_shutdown()
    result = await runner
    assert result.phase is ShutdownPhase.STOPPED
    assert not manager.is_running

    runner = asyncio.create_task(manager.run_until_shutdown())
    await eventually(lambda: manager.is_running)
    os.kill(os.getpid(), signal.SIGTERM)  # handled by the manager's loop handler
    result = await runner
    assert result.reason == "SIGTERM"
    assert not manager.is_running


async def test_unsubscribe_stops_and_forgets() -> None:
    manager = make_manager()
    subscription = await manager.subscribe(Recorder(), BEGINNING, name="orders")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        assert await manager.unsubscribe("orders") is True
        assert subscription.state is SubscriptionState.STOPPED
        assert manager.subscription_count == 0
        assert await manager.unsubscribe("orders") is False


async def test_statuses_and_lag() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 5)
    manager = make_manager(store)
    subscription = await manager.subscribe(Recorder(), BEGINNING, name="orders")
    assert subscription.lag == 0
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        status = manager.get_all_statuses()["orders"]
        assert (status.state, status.position, status.lag_events) == ("live", 5, 0)
        assert status.events_processed == 5
        assert status.to_dict()["started_at"] is not None
        assert subscription.lag_seconds == 0.0
        assert subscription.last_event_type == "OrderPlaced"
        assert subscription.last_processed_at is not None
        assert subscription.uptime_seconds > 0
        assert manager.uptime_seconds > 0
        assert manager.get_subscription_health("orders").lag_events == 0  # type: ignore[union-attr]
        assert manager.check_health("orders").status == "healthy"  # type: ignore[union-attr]
        comprehensive = await manager.get_comprehensive_health()
        assert comprehensive["readiness"]["ready"] is True
        assert manager.is_healthy


async def test_lag_reports_events_behind_while_catching_up() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await place_orders(store, 50)
    gate = asyncio.Event()

    class Gated(Recorder):
        async def handle(self, event: DomainEvent) -> None:
            await super().handle(event)
            if len(self.seen) == 10:
                await gate.wait()

    recorder = Gated()
    manager = make_manager(store)
    subscription = await manager.subscribe(
        recorder, SubscriptionConfig(start_from="beginning", batch_size=10), name="orders"
    )
    async with manager:
        await eventually(lambda: len(recorder.seen) == 10)
        assert subscription.state is SubscriptionState.CATCHING_UP
        assert subscription.lag == 41  # the tenth event is still in its handler
        assert subscription.lag_seconds > 0
        gate.set()
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        assert subscription.lag == 0
