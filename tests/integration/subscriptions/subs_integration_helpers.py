"""The exactly-once check shared by the SQLite and PostgreSQL subscription tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID, uuid4

from eventsource import DomainEvent, InMemoryCheckpointRepository, register_event
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager, SubscriptionState


@register_event
class ItemAdded(DomainEvent):
    event_type: str = "SubsItemAdded"
    aggregate_type: str = "Cart"
    sku: str = ""


class Collector:
    """Records handled event ids in delivery order."""

    def __init__(self) -> None:
        self.seen: list[UUID] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [ItemAdded]

    async def handle(self, event: DomainEvent) -> None:
        self.seen.append(event.event_id)


async def write_batches(store: EventStore, batches: int, batch_size: int) -> None:
    """One writer: `batches` new streams of `batch_size` events, each one append."""
    for _ in range(batches):
        cart_id = uuid4()
        events = [ItemAdded(aggregate_id=cart_id, aggregate_version=v, sku=f"sku-{v}")
                  for v in range(1, batch_size + 1)]
        await store.append_events(cart_id, "Cart", events, 0)
        await asyncio.sleep(0)


async def wait_until(predicate: object, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls plain state
            await asyncio.sleep(0.01)


async def committed_order(store: EventStore) -> list[object]:
    """Every event id in the store's commit-safe order (PostgreSQL: not position order)."""
    ids: list[object] = []
    cursor: str | None = None
    while True:
        page = await store.read_committed(cursor, 1000)
        if not page.events:
            return ids
        ids.extend(stored.event_id for stored in page.events)
        cursor = page.cursor


async def assert_exactly_once_under_writers(
    store: EventStore, *, before: int, writers: int, batches: int, batch_size: int,
    timeout: float = 240.0,
) -> None:
    """Catch up while `writers` tasks append, go live, and receive exactly the stored order."""
    await write_batches(store, before // batch_size, batch_size)
    manager = SubscriptionManager(store, None, InMemoryCheckpointRepository(enable_tracing=False),
                                  enable_tracing=False)
    manager.poll_interval = 0.2
    collector = Collector()
    subscription = await manager.subscribe(
        collector, SubscriptionConfig(start_from="beginning", batch_size=250), name="carts"
    )
    async with manager:
        tasks = [asyncio.create_task(write_batches(store, batches, batch_size))
                 for _ in range(writers)]
        await asyncio.gather(*tasks)
        total = await store.get_global_position()
        await wait_until(lambda: len(collector.seen) >= total
                         and subscription.state is SubscriptionState.LIVE, timeout)
        await asyncio.sleep(0.3)
    expected = await committed_order(store)
    assert len(expected) == before // batch_size * batch_size + writers * batches * batch_size
    assert len(collector.seen) == len(set(collector.seen)) == len(expected)
    assert collector.seen == expected


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL schema, dropped afterwards (for async fixtures, which cannot
    request the async `pg_schema` fixture)."""
    import asyncpg

    name = f"t_{uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()
