"""Every broker bus runs the one contract suite against its real broker.

A new backend adds one branch to `bus_factory` and one small class below.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import pytest

from brokers import require_rabbitmq, require_redis
from eventsource.events.registry import EventRegistry
from eventsource.testing.contract.bus import (
    UNKNOWN_EVENT_TYPE,
    BusFactory,
    ConsumingBus,
    DeadLetter,
    EventBusContract,
)

MAX_ATTEMPTS = 3


class RedisBusFactory:
    """Redis buses on one fresh stream prefix; its keys are deleted afterwards."""

    max_attempts = MAX_ATTEMPTS

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"contract-{uuid.uuid4().hex[:12]}"

    @asynccontextmanager
    async def __call__(
        self,
        consumer_group: str = "contract",
        consumer_name: str | None = None,
        event_registry: EventRegistry | None = None,
    ) -> AsyncIterator[ConsumingBus]:
        from eventsource.bus.redis import RedisEventBus, RedisEventBusConfig

        config = RedisEventBusConfig(
            redis_url=self.url,
            stream_prefix=self.prefix,
            consumer_group=consumer_group,
            consumer_name=consumer_name,
            batch_size=20,
            block_ms=500,
            max_retries=MAX_ATTEMPTS,
            pending_idle_ms=2000,
        )
        bus = RedisEventBus(config, event_registry)
        await bus.connect()
        try:
            yield bus
        finally:
            await bus.shutdown(timeout=10)

    async def dead_letters(self, bus: Any) -> list[DeadLetter]:
        return [
            DeadLetter(
                m["data"].get("event_id"), m["data"].get("event_type"), m["data"]["dlq_reason"]
            )
            for m in await bus.get_dlq_messages()
        ]

    async def publish_raw(self, bus: Any, kind: str) -> None:
        fields = (
            {b"event_type": b"\xff\xfe", b"payload": b"{not json"}
            if kind == "garbage"
            else {"event_id": str(uuid.uuid4()), "event_type": UNKNOWN_EVENT_TYPE, "payload": "{}"}
        )
        await bus._redis.xadd(bus.config.stream_name, fields)

    async def cleanup(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{self.prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


class RabbitMQBusFactory:
    """RabbitMQ buses on one fresh exchange; its exchanges and queues are deleted afterwards."""

    max_attempts = MAX_ATTEMPTS

    def __init__(self, url: str) -> None:
        self.url = url
        self.exchange = f"contract-{uuid.uuid4().hex[:12]}"
        self.groups: set[str] = set()

    @asynccontextmanager
    async def __call__(
        self,
        consumer_group: str = "contract",
        consumer_name: str | None = None,
        event_registry: EventRegistry | None = None,
    ) -> AsyncIterator[ConsumingBus]:
        from eventsource.bus.rabbitmq import RabbitMQEventBus, RabbitMQEventBusConfig

        self.groups.add(consumer_group)
        config = RabbitMQEventBusConfig(
            rabbitmq_url=self.url,
            exchange_name=self.exchange,
            consumer_group=consumer_group,
            consumer_name=consumer_name,
            prefetch_count=20,
            max_retries=MAX_ATTEMPTS,
            retry_base_delay=0.05,
            reconnect_delay=0.2,
            max_reconnect_delay=10.0,
        )
        bus = RabbitMQEventBus(config, event_registry)
        await bus.connect()
        try:
            yield bus
        finally:
            await bus.shutdown(timeout=10)

    async def dead_letters(self, bus: Any) -> list[DeadLetter]:
        return [
            DeadLetter(m.headers.get("event_id"), m.event_type, m.dlq_reason or "")
            for m in await bus.get_dlq_messages()
        ]

    async def publish_raw(self, bus: Any, kind: str) -> None:
        import aio_pika

        headers: dict[str, Any] = (
            {"event_type": bytearray(b"\xff\xfe")}
            if kind == "garbage"
            else {"event_id": str(uuid.uuid4()), "event_type": UNKNOWN_EVENT_TYPE}
        )
        body = b"\xff{not json" if kind == "garbage" else b"{}"
        channel = await bus._conn.channel()
        try:
            exchange = await channel.get_exchange(self.exchange)
            await exchange.publish(aio_pika.Message(body, headers=headers), "Raw.Message")
        finally:
            await channel.close()

    async def cleanup(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel()
            for group in self.groups:
                queue = f"{self.exchange}.{group}"
                for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
                    await channel.queue_delete(name)
            for name in (self.exchange, f"{self.exchange}_dlq"):
                await channel.exchange_delete(name)
        finally:
            await connection.close()


@asynccontextmanager
async def bus_factory(backend: str) -> AsyncIterator[Any]:
    """A factory of buses of `backend` on a fresh stream/topic, its data dropped afterwards;
    one branch per backend."""
    if backend == "redis":
        factory = RedisBusFactory(require_redis())
        try:
            yield factory
        finally:
            await factory.cleanup()
    elif backend == "rabbitmq":
        rabbitmq = RabbitMQBusFactory(require_rabbitmq())
        try:
            yield rabbitmq
        finally:
            await rabbitmq.cleanup()
    else:
        raise ValueError(f"unknown backend {backend!r}")


class _OnBackend(EventBusContract):
    backend: ClassVar[str]

    @pytest.fixture
    async def open_bus(self) -> AsyncIterator[BusFactory]:
        async with bus_factory(self.backend) as factory:
            yield factory


class TestRedisEventBus(_OnBackend):
    backend = "redis"


class TestRabbitMQEventBus(_OnBackend):
    backend = "rabbitmq"
