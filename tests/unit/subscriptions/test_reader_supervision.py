"""Issue 12, item 5: a subscription's reader task that ends unasked is never silent (state ERROR,
health unhealthy, not ready, logged)."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import pytest
from subs_helpers import Recorder, eventually, place_orders

from eventsource import InMemoryCheckpointRepository, InMemoryEventStore
from eventsource.subscriptions import (
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)

BEGINNING = SubscriptionConfig(start_from="beginning")


async def _orders(
    count: int, **kwargs: float
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
