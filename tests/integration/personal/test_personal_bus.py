"""Personal data through the outbox relay and the real Redis bus (issue 18, acceptance 1-2):
the messages on the Redis stream hold no plaintext of a marked field; a consuming bus with the
`PersonalData` attached hands its handlers the plaintext, or after `forget` the replacement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from personal_support import NAME, PLAINTEXTS, SELLER_NAME, OrderPlaced, open_backend, placed

from brokers import require_redis
from eventsource.bus.redis import RedisEventBus, RedisEventBusConfig
from eventsource.personal import erased_fields
from eventsource.repositories.outbox_relay import OutboxRelay


@asynccontextmanager
async def redis_bus(**overrides: Any) -> AsyncIterator[Callable[[], RedisEventBus]]:
    """A factory of `RedisEventBus`es on a fresh stream prefix, all shut down and the
    prefix's keys deleted afterwards."""
    import redis.asyncio as aioredis

    url, prefix = require_redis(), f"pii-{uuid4().hex[:12]}"
    opened: list[RedisEventBus] = []

    def make() -> RedisEventBus:
        config = RedisEventBusConfig(
            redis_url=url, stream_prefix=prefix, block_ms=200, pending_idle_ms=2000, **overrides
        )
        opened.append(RedisEventBus(config))
        return opened[-1]

    try:
        yield make
    finally:
        for bus in opened:
            await bus.shutdown(timeout=10)
        client = aioredis.Redis.from_url(url)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def outbox_of(backend: Any) -> Any:
    if backend.kind == "sqlite":
        from eventsource.repositories.sqlite import SQLiteOutboxRepository

        return SQLiteOutboxRepository(backend.store)
    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository

    return PostgreSQLOutboxRepository(backend.engine)


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
async def test_bus_messages_hold_no_plaintext(kind: str, tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    async with open_backend(kind, tmp_path) as backend, redis_bus() as new_bus:
        publisher, consumer = new_bus(), new_bus()
        backend.personal.attach(consumer)  # the consumer opens marked fields
        received: list[OrderPlaced] = []

        async def handle(event: OrderPlaced) -> None:
            received.append(event)

        consumer.subscribe(OrderPlaced, handle)
        first, second = uuid4(), uuid4()
        await backend.store.append_events(first, "Order", [placed(first)], 0)
        await backend.store.append_events(second, "Order", [placed(second, "buyer-2")], 0)
        relay = OutboxRelay(outbox_of(backend), publisher, personal_data=backend.personal)
        try:
            assert (await relay.run_once()).published == 2
        finally:
            await relay.stop()

        client = aioredis.Redis.from_url(publisher.config.redis_url)
        try:
            entries = await client.xrange(publisher.config.stream_name)
        finally:
            await client.aclose()
        assert entries is not None
        raw = repr(entries)
        assert len(entries) == 2
        assert "pii:1:" in raw
        for plaintext in PLAINTEXTS:
            assert plaintext not in raw

        await backend.personal.forget("buyer-1")  # after publishing, before consuming
        task = asyncio.create_task(consumer.start_consuming())
        try:
            for _ in range(500):
                if len(received) == 2:
                    break
                await asyncio.sleep(0.02)
        finally:
            await consumer.stop_consuming()
            await task
        by_buyer = {event.buyer_id: event for event in received}
        assert by_buyer["buyer-2"].buyer_name == NAME
        assert by_buyer["buyer-1"].buyer_name == "[erased]"
        assert by_buyer["buyer-1"].seller_name == SELLER_NAME
        assert erased_fields(by_buyer["buyer-1"]) == {"buyer_name", "buyer_street"}
