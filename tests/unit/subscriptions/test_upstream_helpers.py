"""Issue 20, group 13: `EventFilter`, `FlowController`, the subscriber helpers and
`SubscriptionMetrics` as eventsource-py 0.2.0 documents them (no database involved; the manager
running these subscribers on real stores is tested in
tests/integration/subscriptions/test_upstream_subscribers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsource import DomainEvent
from eventsource.subscriptions import SubscriptionConfigError
from eventsource.subscriptions.filtering import (
    EventFilter,
    FilterStats,
    matches_event_type,
    matches_pattern,
)
from eventsource.subscriptions.flow_control import FlowController
from eventsource.subscriptions.metrics import (
    MetricSnapshot,
    NoOpCounter,
    StateValue,
    SubscriptionMetrics,
    clear_metrics_registry,
    get_metrics,
)
from eventsource.subscriptions.subscriber import (
    BatchAwareSubscriber,
    BatchSubscriber,
    get_subscribed_event_types,
    supports_batch_handling,
)


class OrderCreated(DomainEvent):
    event_type: str = "OrderCreated"
    aggregate_type: str = "Order"


class OrderShipped(DomainEvent):
    event_type: str = "OrderShipped"
    aggregate_type: str = "Order"


class PaymentTaken(DomainEvent):
    event_type: str = "PaymentTaken"
    aggregate_type: str = "Payment"


def _events(tenant: object = None) -> list[DomainEvent]:
    return [kind(aggregate_id=uuid4(), tenant_id=tenant)
            for kind in (OrderCreated, OrderShipped, PaymentTaken)]


# -- filtering ---------------------------------------------------------------------------


def test_filter_criteria_combine() -> None:
    created, shipped, paid = _events()
    assert all(EventFilter().matches(e) for e in (created, shipped, paid))
    assert not EventFilter().is_configured
    assert [EventFilter(event_types=(OrderCreated,)).matches(e) for e in (created, paid)] == [
        True, False,
    ]
    orders = EventFilter.from_patterns("Order*")
    assert [orders.matches(e) for e in (created, shipped, paid)] == [True, True, False]
    both = EventFilter(event_type_patterns=("*Created", "*Taken"), aggregate_types=("Order",))
    assert [both.matches(e) for e in (created, shipped, paid)] == [True, False, False]
    assert both.stats.to_dict() == {
        "events_evaluated": 3, "events_matched": 1, "events_skipped": 2, "match_rate": 0.3333,
    }
    both.reset_stats()
    assert both.stats == FilterStats()
    assert EventFilter(event_types=(OrderCreated, OrderShipped)).event_type_names == [
        "OrderCreated", "OrderShipped",
    ]
    assert repr(orders) == "EventFilter(patterns=['Order*'])"


def test_filter_by_tenant_and_helpers() -> None:
    tenant = uuid4()
    mine, theirs = _events(tenant)[0], _events(uuid4())[0]
    only_mine = EventFilter(tenant_id=tenant)
    assert only_mine.matches(mine)
    assert not only_mine.matches(theirs)
    assert matches_event_type(mine, None)
    assert not matches_event_type(mine, (PaymentTaken,))
    assert matches_pattern("OrderCreated", "Order?reated")
    assert not matches_pattern("OrderCreated", "order*")


@given(st.lists(st.sampled_from([OrderCreated, OrderShipped, PaymentTaken]), max_size=20),
       st.sets(st.sampled_from(["Order", "Payment"])))
def test_filter_counts_every_event_it_sees(
    kinds: list[type[DomainEvent]], aggregates: set[str]
) -> None:
    selection = EventFilter(aggregate_types=tuple(sorted(aggregates)) or None)
    matched = [selection.matches(kind(aggregate_id=uuid4())) for kind in kinds]
    stats = selection.stats
    assert stats.events_evaluated == len(kinds)
    assert stats.events_matched == sum(matched)
    assert matched == [not aggregates or k.model_fields["aggregate_type"].default in aggregates
                       for k in kinds]


# -- subscriber helpers --------------------------------------------------------------------


class Bulk(BatchAwareSubscriber):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [OrderCreated, OrderShipped]

    async def handle(self, event: DomainEvent) -> None:
        if event.event_type == "OrderShipped":
            raise ValueError("not yet")
        self.seen.append(event.event_type)


async def test_batch_aware_subscriber() -> None:
    bulk = Bulk()
    created, shipped, paid = _events()
    assert isinstance(bulk, BatchSubscriber)
    assert supports_batch_handling(bulk)
    assert not supports_batch_handling(object())
    assert bulk.can_handle(created)
    assert not bulk.can_handle(paid)
    assert repr(bulk) == "Bulk(subscribed_to=['OrderCreated', 'OrderShipped'])"
    handled, failures = await bulk.handle_batch_with_error_tracking([created, shipped, created])
    assert handled == 2
    assert [(e, type(err)) for e, err in failures] == [(shipped, ValueError)]
    with pytest.raises(ValueError, match="not yet"):
        await bulk.handle_batch([created, shipped])
    assert get_subscribed_event_types(bulk) == [OrderCreated, OrderShipped]


def test_subscribed_to_must_return_a_list() -> None:
    class Tuple:
        def subscribed_to(self) -> Sequence[type[DomainEvent]]:
            return (OrderCreated,)

    with pytest.raises(SubscriptionConfigError, match="must return a list"):
        get_subscribed_event_types(Tuple())


# -- flow control --------------------------------------------------------------------------


async def test_flow_controller_limits_what_is_in_flight() -> None:
    controller = FlowController(max_in_flight=2, backpressure_threshold=0.5)
    running: list[int] = []
    most = 0

    async def work(n: int) -> None:
        nonlocal most
        async with await controller.acquire():
            running.append(n)
            most = max(most, len(running))
            await asyncio.sleep(0.01)
            running.remove(n)

    await asyncio.gather(*(work(n) for n in range(6)))
    stats = controller.stats
    assert most == 2
    assert stats.peak_in_flight == 2
    assert (stats.total_acquisitions, stats.total_releases, stats.events_in_flight) == (6, 6, 0)
    assert stats.pause_count >= 1
    assert controller.available_capacity == 2
    assert not controller.is_paused


async def test_flow_controller_states_and_capacity_wait() -> None:
    controller = FlowController(max_in_flight=2, backpressure_threshold=0.5)
    first = await controller.acquire()
    assert controller.is_backpressured
    assert not controller.is_paused
    assert controller.utilization == 0.5
    second = await controller.acquire()
    assert controller.is_paused
    assert controller.available_capacity == 0
    waiter = asyncio.create_task(controller.wait_for_capacity(2))
    await asyncio.sleep(0)
    await first.__aexit__(None, None, None)
    await asyncio.sleep(0)
    assert not waiter.done()
    async with second:
        pass
    await asyncio.wait_for(waiter, 1)
    with pytest.raises(ValueError, match="min_capacity"):
        await controller.wait_for_capacity(3)
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        await controller.release()
    with pytest.raises(ValueError, match="max_in_flight"):
        FlowController(max_in_flight=0)


# -- metrics -------------------------------------------------------------------------------


def test_metrics_snapshot_without_instruments() -> None:
    metrics = SubscriptionMetrics("orders", enable_metrics=False)
    assert not metrics.metrics_enabled
    metrics.record_event_processed("OrderCreated", 2.5)
    metrics.record_event_failed("OrderCreated", "ValueError", duration_ms=1.0)
    metrics.record_lag(-3)
    metrics.record_state("CATCHING_UP")
    with metrics.time_processing() as timer:
        pass
    assert timer.duration_ms >= 0
    assert metrics.get_snapshot() == MetricSnapshot(
        events_processed=1, events_failed=1, total_processing_time_ms=3.5, current_lag=0,
        current_state=StateValue.CATCHING_UP, current_state_name="catching_up",
    )
    metrics.record_state("sideways")
    assert metrics.get_snapshot().current_state == StateValue.UNKNOWN
    NoOpCounter().add(1)


def test_metrics_registry_gives_one_per_name() -> None:
    clear_metrics_registry()
    first = get_metrics("orders", enable_metrics=False)
    assert get_metrics("orders") is first
    clear_metrics_registry()
    assert get_metrics("orders", enable_metrics=False) is not first
    clear_metrics_registry()


def test_metrics_reach_opentelemetry(telemetry: object) -> None:
    from otel_support import Telemetry

    assert isinstance(telemetry, Telemetry)
    name = f"orders-{uuid4()}"
    metrics = SubscriptionMetrics(name)
    assert metrics.metrics_enabled
    metrics.record_event_processed("OrderCreated", 4.0)
    metrics.record_event_failed("OrderCreated", "ValueError")
    metrics.record_lag(7)
    metrics.record_state("live")
    processed = {"subscription": name, "event.type": "OrderCreated", "status": "success"}
    assert telemetry.counter_delta("subscription.events.processed", processed) == 1
    assert telemetry.histogram_delta("subscription.processing.duration", processed) == (1, 4.0)
    failed = {"subscription": name, "event.type": "OrderCreated", "error.type": "ValueError"}
    assert telemetry.counter_delta("subscription.events.failed", failed) == 1
    assert telemetry.gauge("subscription.lag", {"subscription": name}) == 7
    assert telemetry.gauge(
        "subscription.state", {"subscription": name, "state_name": "live"}
    ) == StateValue.LIVE
