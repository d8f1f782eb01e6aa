"""Exactly once, in store order, while 8 writers append through catch-up and into live."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID, uuid4

from subs_helpers import OrderPlaced, OrderShipped, Recorder, eventually, stored_ids

from eventsource import InMemoryCheckpointRepository, InMemoryEventBus, InMemoryEventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager, SubscriptionState

WRITERS = 8
BATCHES_PER_WRITER = 250
BATCH = 8  # 8 x 250 x 8 = 16,000 events written concurrently, plus 4,000 before start


async def writer(store: InMemoryEventStore, bus: InMemoryEventBus, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(BATCHES_PER_WRITER):
        order_id = uuid4()
        events = [OrderPlaced(aggregate_id=order_id, aggregate_version=1)] + [
            OrderShipped(aggregate_id=order_id, aggregate_version=v) for v in range(2, BATCH + 1)
        ]
        await store.append_events(order_id, "Order", events, 0)
        if rng.random() < 0.5:  # like a repository with a publisher: wakes readers early
            await bus.publish(events)
        await asyncio.sleep(0)
        if rng.random() < 0.05:
            await asyncio.sleep(0.001)


async def test_exactly_once_in_store_order_under_concurrent_writers() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    bus = InMemoryEventBus(enable_tracing=False)
    for _ in range(500):
        order_id = uuid4()
        await store.append_events(order_id, "Order", [
            OrderPlaced(aggregate_id=order_id, aggregate_version=v) for v in range(1, 9)
        ], 0)
    manager = SubscriptionManager(store, bus, InMemoryCheckpointRepository(enable_tracing=False),
                                  enable_tracing=False)
    recorders = {name: Recorder() for name in ("small-pages", "large-pages")}
    subscriptions = [
        await manager.subscribe(recorders["small-pages"],
                                SubscriptionConfig(start_from="beginning", batch_size=7),
                                name="small-pages"),
        await manager.subscribe(recorders["large-pages"],
                                SubscriptionConfig(start_from="beginning", batch_size=500),
                                name="large-pages"),
    ]
    async with manager:
        writers = [asyncio.create_task(writer(store, bus, seed)) for seed in range(WRITERS)]
        await eventually(lambda: all(s.state is SubscriptionState.LIVE for s in subscriptions))
        await asyncio.gather(*writers)
        total = await store.get_event_count()
        assert total == 4000 + WRITERS * BATCHES_PER_WRITER * BATCH
        await eventually(lambda: all(len(r.seen) >= total for r in recorders.values()))
        await asyncio.sleep(0.05)
    expected: list[UUID] = await stored_ids(store)
    for recorder in recorders.values():
        assert len(recorder.seen) == len(expected)
        assert recorder.seen == expected
    assert all(s.last_processed_position == total for s in subscriptions)
