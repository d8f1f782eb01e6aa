"""Every broker bus runs the one contract suite against its real broker.

A new backend adds one branch to `bus_factory` and one small class below.

Kafka runs only when `EVENTSOURCE_TEST_KAFKA_BOOTSTRAP` names a broker; otherwise its tests are
skipped with a message saying so, in CI too. That is the one allowed skip: no Kafka broker can be
installed on the CI machine, and a mock would prove nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, ClassVar

import pytest

from brokers import require_kafka, require_nats, require_rabbitmq, require_redis
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


class NATSBusFactory:
    """NATS buses on one fresh stream (and DLQ stream); both are deleted afterwards."""

    max_attempts = MAX_ATTEMPTS

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"contract{uuid.uuid4().hex[:12]}"

    def config(self, consumer_group: str, consumer_name: str | None) -> Any:
        from eventsource.bus.nats import NATSEventBusConfig

        return NATSEventBusConfig(
            servers=self.url,
            subject_prefix=self.prefix,
            consumer_group=consumer_group,
            consumer_name=consumer_name,
            batch_size=20,
            fetch_timeout=0.5,
            ack_wait=2.0,  # a consumer that vanished hands its messages on within seconds
            max_retries=MAX_ATTEMPTS,
            retry_base_delay=0.05,
            retry_max_delay=0.2,
        )

    @asynccontextmanager
    async def __call__(
        self,
        consumer_group: str = "contract",
        consumer_name: str | None = None,
        event_registry: EventRegistry | None = None,
    ) -> AsyncIterator[ConsumingBus]:
        from eventsource.bus.nats import NATSEventBus

        bus = NATSEventBus(self.config(consumer_group, consumer_name), event_registry)
        await bus.connect()
        try:
            yield bus
        finally:
            await bus.shutdown(timeout=10)

    async def dead_letters(self, bus: Any) -> list[DeadLetter]:
        return [
            DeadLetter(
                m["headers"].get("event_id"),
                m["headers"].get("event_type"),
                m["headers"]["dlq_reason"],
            )
            for m in await bus.get_dlq_messages()
        ]

    async def publish_raw(self, bus: Any, kind: str) -> None:
        if kind == "garbage":
            headers, body = None, b"\xff\xfe{not json"
        else:
            headers = {"event_id": str(uuid.uuid4()), "event_type": UNKNOWN_EVENT_TYPE}
            body = b"{}"
        subject = bus.config.subject_for("ContractBall", "Raw")
        await bus._jetstream.publish(subject, body, headers=headers)

    async def cleanup(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        config = self.config("contract", None)
        client = await nats.connect(self.url)
        try:
            for stream in (config.stream_name, config.dlq_stream_name):
                with suppress(NotFoundError):
                    await client.jetstream().delete_stream(stream)
        finally:
            await client.close()


class KafkaBusFactory:
    """Kafka buses on a fresh topic of 4 partitions (so a group's consumers share it) and its
    DLQ topic; both are deleted afterwards."""

    max_attempts = MAX_ATTEMPTS

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"contract-{uuid.uuid4().hex[:12]}"

    def config(self, consumer_group: str, consumer_name: str | None) -> Any:
        from eventsource.bus.kafka import KafkaEventBusConfig

        return KafkaEventBusConfig(
            bootstrap_servers=self.bootstrap,
            topic_prefix=self.prefix,
            consumer_group=f"{self.prefix}-{consumer_group}",
            consumer_name=consumer_name,
            max_retries=MAX_ATTEMPTS,
            retry_base_delay=0.05,
            retry_max_delay=0.2,
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
        )

    async def create_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        config = self.config("contract", None)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(config.topic_name, 4, 1), NewTopic(config.dlq_topic_name, 1, 1)]
            )
        finally:
            await admin.close()

    @asynccontextmanager
    async def __call__(
        self,
        consumer_group: str = "contract",
        consumer_name: str | None = None,
        event_registry: EventRegistry | None = None,
    ) -> AsyncIterator[ConsumingBus]:
        from eventsource.bus.kafka import KafkaEventBus

        bus = KafkaEventBus(self.config(consumer_group, consumer_name), event_registry)
        await bus.connect()
        try:
            yield bus
        finally:
            await bus.shutdown(timeout=10)

    async def dead_letters(self, bus: Any) -> list[DeadLetter]:
        return [
            DeadLetter(
                m["headers"].get("event_id"),
                m["headers"].get("event_type"),
                m["headers"]["dlq_reason"],
            )
            for m in await bus.get_dlq_messages(timeout_ms=2000)
        ]

    async def publish_raw(self, bus: Any, kind: str) -> None:
        if kind == "garbage":
            headers: list[tuple[str, bytes]] = [("event_type", b"\xff\xfe")]
            body = b"{not json"
        else:
            headers = [
                ("event_id", str(uuid.uuid4()).encode()),
                ("event_type", UNKNOWN_EVENT_TYPE.encode()),
            ]
            body = b"{}"
        await bus._kafka.send_and_wait(bus.config.topic_name, value=body, headers=headers)

    async def cleanup(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        config = self.config("contract", None)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([config.topic_name, config.dlq_topic_name])
        finally:
            await admin.close()


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
    elif backend == "nats":
        nats_factory = NATSBusFactory(require_nats())
        try:
            yield nats_factory
        finally:
            await nats_factory.cleanup()
    elif backend == "rabbitmq":
        rabbitmq = RabbitMQBusFactory(require_rabbitmq())
        try:
            yield rabbitmq
        finally:
            await rabbitmq.cleanup()
    elif backend == "kafka":
        kafka_factory = KafkaBusFactory(require_kafka())
        await kafka_factory.create_topics()
        try:
            yield kafka_factory
        finally:
            await kafka_factory.cleanup()
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


class TestNATSEventBus(_OnBackend):
    backend = "nats"


class TestRabbitMQEventBus(_OnBackend):
    backend = "rabbitmq"


class TestKafkaEventBus(_OnBackend):
    backend = "kafka"
