"""Issue 12, items 5 and 6: a subscription's reader task that ends unasked is never silent (state
ERROR, health unhealthy, not ready, logged), and `stop(timeout)` keeps to its timeout even when a
handler swallows cancellation, naming what it abandoned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from uuid import UUID

import pytest
from subs_helpers import Recorder, eventually, place_orders

from eventsource import DomainEvent, InMemoryCheckpointRepository, InMemoryEventStore
from eventsource.subscriptions import (
    ShutdownPhase,
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)

BEGINNING = SubscriptionConfig(start_from="beginning")


async def _orders(
    count: int, **kwargs: Any
) -> tuple[list[UUID], InMemoryCheckpointRepository, SubscriptionManager]:
    """`count` stored orders, and a manager over them with in-memory checkpoints."""
    store = InMemoryEventStore(enable_tracing=False)
    ids = await place_orders(store, count)
    checkpoints = InMemoryCheckpointRepository(enable_tracing=False)
    manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False, **kwargs)
    manager.poll_interval = 0.05
    return ids, checkpoints, manager


def _reader_task(name: str) -> asyncio.Task[object]:
    [task] = [t for t in asyncio.all_tasks() if t.get_name() == f"subscription:{name}"]
    return task


async def _assert_failed_loudly(manager: SubscriptionManager, name: str) -> None:
    health = manager.get_subscription_health(name)
    assert health is not None
    assert (health.state, health.status) == ("error", "unhealthy")
    readiness = await manager.readiness_check()
    assert not readiness.ready
    assert name in readiness.reason


async def test_a_handler_raising_cancelled_error_stops_its_subscription_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, checkpoints, manager = await _orders(5)
    failing = Recorder(fail=lambda event, _n: (
        asyncio.CancelledError() if event.event_id == ids[2] else None
    ))
    others = Recorder()
    subscription = await manager.subscribe(
        failing, SubscriptionConfig(start_from="beginning", batch_size=2), name="orders"
    )
    other = await manager.subscribe(others, BEGINNING, name="others")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.ERROR)
        await _assert_failed_loudly(manager, "orders")
        await eventually(lambda: other.state is SubscriptionState.LIVE)
    assert failing.seen == ids[:2]
    assert others.seen == ids
    message = str(subscription.last_error)
    assert "CancelledError" in message
    assert str(ids[2]) in message
    assert any(r.levelno >= logging.ERROR and "orders" in r.getMessage() for r in caplog.records)
    assert await checkpoints.get_position("orders") == 2  # the failed event is not skipped


async def test_a_reader_task_cancelled_by_someone_else_is_reported() -> None:
    _ids, _checkpoints, manager = await _orders(3)
    subscription = await manager.subscribe(Recorder(), BEGINNING, name="orders")
    async with manager:
        await eventually(lambda: subscription.state is SubscriptionState.LIVE)
        _reader_task("orders").cancel()
        await eventually(lambda: subscription.state is SubscriptionState.ERROR)
        await _assert_failed_loudly(manager, "orders")
        assert "cancelled" in str(subscription.last_error)


async def test_stop_keeps_to_its_timeout_when_a_handler_swallows_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, checkpoints, manager = await _orders(3, drain_timeout=10.0)
    release, entered = asyncio.Event(), asyncio.Event()

    class Stubborn(Recorder):
        async def handle(self, event: DomainEvent) -> None:
            entered.set()
            while not release.is_set():
                with contextlib.suppress(asyncio.CancelledError):  # swallows every cancellation
                    await release.wait()
            await super().handle(event)

    stubborn, others = Stubborn(), Recorder()
    # start() waits for a first event at most processing_timeout (+ slack): keep it short.
    impatient = SubscriptionConfig(start_from="beginning", processing_timeout=0.2)
    subscription = await manager.subscribe(stubborn, impatient, name="stubborn")
    other = await manager.subscribe(others, BEGINNING, name="others")
    await manager.start()
    await entered.wait()
    await eventually(lambda: others.seen == ids)
    task = _reader_task("stubborn")
    started = time.monotonic()
    stopping = asyncio.create_task(manager.stop(timeout=1.0))
    try:
        await asyncio.wait([stopping], timeout=10)  # a failure, not a hang, while unbounded
        assert stopping.done()
        assert time.monotonic() - started < 1.0 + 0.5  # its timeout, plus scheduling slack
        result = stopping.result()
        assert result.forced
        assert result.phase is ShutdownPhase.FORCED
        assert result.abandoned == ("stubborn",)
        assert result.subscriptions_stopped == 2
        assert subscription.state is SubscriptionState.ERROR
        assert "abandoned" in str(subscription.last_error)
        assert other.state is SubscriptionState.STOPPED
        assert await checkpoints.get_position("others") == 3
        assert any("stubborn" in r.getMessage() and "abandoned" in r.getMessage()
                   for r in caplog.records if r.levelno >= logging.ERROR)
    finally:
        release.set()
        await asyncio.wait([task, stopping], timeout=5)
    assert task.done()
    assert stubborn.seen == ids[:1]  # abandoned: it finished its event and took no other
