"""Subscriber errors, retries, DLQ, callbacks and store outages (API.md §7.3.6, §7.4)."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from subs_helpers import FlakyStore, Recorder, eventually, place_orders, stored_ids

from eventsource import (
    DomainEvent,
    InMemoryCheckpointRepository,
    InMemoryDLQRepository,
    InMemoryEventBus,
    InMemoryEventStore,
)
from eventsource.subscriptions import (
    ErrorCategory,
    ErrorHandlingConfig,
    ErrorHandlingStrategy,
    ErrorInfo,
    ErrorSeverity,
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)

FAST_RETRY = {"initial_retry_delay": 0.001, "max_retry_delay": 0.01, "retry_jitter": 0.0,
              "circuit_breaker_enabled": False}


def config(**kwargs: object) -> SubscriptionConfig:
    return SubscriptionConfig(start_from="beginning", **{**FAST_RETRY, **kwargs})  # type: ignore[arg-type]


def manager_for(store: InMemoryEventStore, **kwargs: object) -> SubscriptionManager:
    return SubscriptionManager(
        store, InMemoryEventBus(enable_tracing=False),
        kwargs.pop("checkpoints", None) or InMemoryCheckpointRepository(enable_tracing=False),  # type: ignore[arg-type]
        enable_tracing=False, **kwargs,  # type: ignore[arg-type]
    )


def fail_on(bad: set[UUID], error: type[Exception] = ValueError, times: int | None = None):  # type: ignore[no-untyped-def]
    def fail(event: DomainEvent, attempt: int) -> Exception | None:
        if event.event_id in bad and (times is None or attempt <= times):
            return error(f"cannot handle {event.event_id}")
        return None
    return fail


async def test_continue_on_error_skips_the_failed_event_and_counts_it() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 5)
    recorder = Recorder(fail=fail_on({ids[2]}))
    manager = manager_for(store)
    subscription = await manager.subscribe(recorder, config(), name="orders")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        assert recorder.seen == ids[:2] + ids[3:]
        assert recorder.attempts[ids[2]] == 1  # ValueError is not retryable
        assert subscription.events_failed == 1
        assert subscription.events_processed == 4
        assert isinstance(subscription.last_error, ValueError)
        stats = manager.get_error_stats()
        assert stats["total_errors"] == 1
        assert stats["subscriptions"]["orders"]["errors_by_type"] == {"ValueError": 1}
        assert stats["subscriptions"]["orders"]["errors_by_category"] == {"application": 1}
        health = manager.get_subscription_health("orders")
        assert health is not None
        assert health.last_error == f"cannot handle {ids[2]}"


async def test_stop_on_error_leaves_the_event_for_the_next_run() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    checkpoints = InMemoryCheckpointRepository(enable_tracing=False)
    ids = await place_orders(store, 5)
    recorder = Recorder(fail=fail_on({ids[2]}))
    manager = manager_for(store, checkpoints=checkpoints)
    subscription = await manager.subscribe(recorder, config(continue_on_error=False), name="o")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.ERROR)
        assert recorder.seen == ids[:2]
        readiness = await manager.readiness_check()
        assert readiness.ready is False
        assert "o" in readiness.reason
        assert (await manager.health_check()).status == "unhealthy"
    assert subscription.state is SubscriptionState.ERROR
    assert await checkpoints.get_position("o") == 2

    fixed = Recorder()
    manager = manager_for(store, checkpoints=checkpoints)
    await manager.subscribe(fixed, SubscriptionConfig(), name="o")
    async with manager:
        await eventually(lambda: fixed.seen == ids[2:])


async def test_strategy_stop_halts_even_with_continue_on_error() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)
    manager = manager_for(
        store, error_handling_config=ErrorHandlingConfig(strategy=ErrorHandlingStrategy.STOP)
    )
    subscription = await manager.subscribe(Recorder(fail=fail_on({ids[0]})), config())
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.ERROR)
    assert subscription.events_processed == 0


async def test_transient_errors_are_retried_until_they_pass() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)
    recorder = Recorder(fail=fail_on({ids[1]}, ConnectionError, times=2))
    manager = manager_for(store)
    subscription = await manager.subscribe(recorder, config(max_retries=3))
    async with manager:
        await eventually(lambda: recorder.seen == ids)
    assert recorder.attempts[ids[1]] == 3
    assert subscription.events_failed == 0
    assert subscription.events_processed == 3


async def test_retries_exhausted_go_to_the_dlq_with_the_attempt_count() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)
    dlq = InMemoryDLQRepository(enable_tracing=False)
    recorder = Recorder(fail=fail_on({ids[1]}, ConnectionError))
    manager = manager_for(store, dlq_repo=dlq)
    errors: list[ErrorInfo] = []

    async def collect(info: ErrorInfo) -> None:
        errors.append(info)

    manager.on_error(collect)
    subscription = await manager.subscribe(recorder, config(max_retries=2), name="orders")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert recorder.seen == [ids[0], ids[2]]
    assert recorder.attempts[ids[1]] == 3
    entries = await dlq.get_failed_events()
    assert len(entries) == 1
    assert (entries[0].event_id, entries[0].projection_name) == (ids[1], "orders")
    assert entries[0].retry_count == 3
    assert entries[0].error_message == f"cannot handle {ids[1]}"
    assert subscription.events_dlq == 1
    assert manager.total_dlq_count == 1
    assert [(e.sent_to_dlq, e.retry_count, e.error_type) for e in errors] == [
        (True, 2, "ConnectionError")
    ]


@pytest.mark.parametrize(
    ("strategy", "dlq_enabled", "expected"),
    [
        (ErrorHandlingStrategy.DLQ_ONLY, True, 1),
        (ErrorHandlingStrategy.RETRY_THEN_DLQ, True, 1),
        (ErrorHandlingStrategy.CONTINUE, True, 1),
        (ErrorHandlingStrategy.RETRY_THEN_CONTINUE, False, 0),
    ],
)
async def test_dlq_follows_the_strategy(
    strategy: ErrorHandlingStrategy, dlq_enabled: bool, expected: int
) -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 2)
    dlq = InMemoryDLQRepository(enable_tracing=False)
    recorder = Recorder(fail=fail_on({ids[0]}, ConnectionError))
    manager = manager_for(store, dlq_repo=dlq, error_handling_config=ErrorHandlingConfig(
        strategy=strategy, dlq_enabled=dlq_enabled))
    subscription = await manager.subscribe(recorder, config(max_retries=1))
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert len(await dlq.get_failed_events()) == expected
    retried = strategy in (ErrorHandlingStrategy.RETRY_THEN_DLQ,
                           ErrorHandlingStrategy.RETRY_THEN_CONTINUE)
    assert recorder.attempts[ids[0]] == (2 if retried else 1)


async def test_callbacks_by_category_and_severity_also_for_later_subscriptions() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)
    manager = manager_for(store)
    calls: list[tuple[str, str]] = []

    async def transient(info: ErrorInfo) -> None:
        calls.append(("transient", info.error_type))

    async def high(info: ErrorInfo) -> None:
        calls.append(("high", info.error_type))

    async def broken(info: ErrorInfo) -> None:
        raise RuntimeError("callback bug")  # logged only

    manager.on_error(broken)
    manager.on_error_category(ErrorCategory.TRANSIENT, transient)
    manager.on_error_severity(ErrorSeverity.HIGH, high)

    def fail(event: DomainEvent, attempt: int) -> Exception | None:
        return {ids[0]: ConnectionError("down"), ids[1]: TypeError("bug")}.get(event.event_id)

    subscription = await manager.subscribe(Recorder(fail=fail), config(max_retries=0))
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert calls == [("transient", "ConnectionError"), ("high", "TypeError")]
    assert subscription.events_processed == 1


async def test_processing_timeout_is_an_error_and_processing_goes_on() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 3)

    class Hangs(Recorder):
        async def handle(self, event: DomainEvent) -> None:
            if event.event_id == ids[1]:
                await asyncio.Event().wait()
            await super().handle(event)

    recorder = Hangs()
    manager = manager_for(store)
    subscription = await manager.subscribe(
        recorder, config(processing_timeout=0.05, max_retries=0)
    )
    infos: list[ErrorInfo] = []
    manager.on_error(infos.append)  # a sync callback is accepted too
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
    assert recorder.seen == [ids[0], ids[2]]
    assert subscription.events_failed == 1
    assert infos[0].classification.category is ErrorCategory.TRANSIENT
    assert "processing_timeout" in infos[0].error_message


async def test_max_errors_before_stop() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 6)
    manager = manager_for(store, error_handling_config=ErrorHandlingConfig(
        max_errors_before_stop=2))
    recorder = Recorder(fail=fail_on(set(ids[1:4])))
    subscription = await manager.subscribe(recorder, config())
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.ERROR)
    assert recorder.seen == [ids[0]]
    assert subscription.events_failed == 2


async def test_circuit_breaker_opens_after_consecutive_failures() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, 4)
    manager = manager_for(store)
    recorder = Recorder(fail=fail_on(set(ids[:2])))
    subscription = await manager.subscribe(recorder, config(
        circuit_breaker_enabled=True, circuit_breaker_failure_threshold=2,
        circuit_breaker_recovery_timeout=0.3))
    async with manager:
        await eventually(lambda: subscription.events_failed == 2)
        assert subscription.circuit_breaker is not None
        assert subscription.circuit_breaker.is_open
        assert (await manager.health_check()).status == "unhealthy"
        await eventually(lambda: recorder.seen == ids[2:])
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        assert (await manager.health_check()).status == "healthy"


async def test_store_outage_is_survived_without_loss_or_duplicates() -> None:
    store = FlakyStore(failures=0)
    before = await place_orders(store, 20)
    recorder = Recorder()
    manager = manager_for(store)
    subscription = await manager.subscribe(
        recorder, SubscriptionConfig(start_from="beginning", batch_size=7), name="orders"
    )
    store.failures_left = 4  # the first reads fail: an outage during catch-up
    async with manager:
        await eventually(lambda: not subscription.store_reachable)
        health = manager.get_subscription_health("orders")
        assert health is not None
        assert health.status == "unhealthy"
        assert health.store_reachable is False
        assert "unreachable" in (health.last_error or "")
        assert (await manager.health_check()).status == "unhealthy"
        await eventually(lambda: recorder.seen == before)
        assert subscription.store_reachable
        assert manager.get_subscription_health("orders").status == "healthy"  # type: ignore[union-attr]
        store.failures_left = 2  # and another one while live
        after = await place_orders(store, 5)
        await eventually(lambda: recorder.seen == before + after)
        await asyncio.sleep(0.05)
    assert recorder.seen == await stored_ids(store)
    assert store.failures_left == 0


async def test_store_down_at_start_is_retried() -> None:
    store = FlakyStore(failures=0)
    ids = await place_orders(store, 3)
    store.position_down = True
    recorder = Recorder()
    manager = manager_for(store)
    subscription = await manager.subscribe(recorder, SubscriptionConfig(start_from="end"))
    async with manager:
        await eventually(lambda: not subscription.store_reachable)
        assert subscription.state is SubscriptionState.STARTING
        assert (await manager.readiness_check()).ready is False
        store.position_down = False
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        more = await place_orders(store, 2)
        await eventually(lambda: recorder.seen == more)
    assert ids[0] not in recorder.seen
