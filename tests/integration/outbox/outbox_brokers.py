"""Real brokers for the outbox end-to-end tests: one bus configuration per broker kind, built
the same way by the test and by its child processes, and the cleanup of what a test created.

Kinds: "redis", "rabbitmq", "nats", "kafka" (URL = bootstrap servers).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

KINDS = ("redis", "rabbitmq", "nats", "kafka")


class Broker:
    """The buses of one test on broker `kind` at `url`; `name` keeps its streams, exchanges,
    subjects or topics apart from every other test's."""

    def __init__(self, kind: str, url: str, name: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown broker kind {kind!r}; known: {', '.join(KINDS)}")
        self.kind = kind
        self.url = url
        self.name = name
        self.groups: set[str] = set()

    def bus(self, group: str = "publisher") -> Any:
        """A bus of consumer group `group` (consumers of one group share the events)."""
        self.groups.add(group)
        if self.kind == "redis":
            from eventsource.bus.redis import RedisEventBus, RedisEventBusConfig

            return RedisEventBus(
                RedisEventBusConfig(
                    redis_url=self.url,
                    stream_prefix=self.name,
                    consumer_group=group,
                    block_ms=500,
                    batch_size=50,
                )
            )
        if self.kind == "rabbitmq":
            from eventsource.bus.rabbitmq import RabbitMQEventBus, RabbitMQEventBusConfig

            return RabbitMQEventBus(
                RabbitMQEventBusConfig(
                    rabbitmq_url=self.url,
                    exchange_name=self.name,
                    consumer_group=group,
                    prefetch_count=50,
                    reconnect_delay=0.2,
                    max_reconnect_delay=10.0,
                )
            )
        if self.kind == "nats":
            from eventsource.bus.nats import NATSEventBus, NATSEventBusConfig

            return NATSEventBus(
                NATSEventBusConfig(
                    servers=self.url,
                    subject_prefix=self.name,
                    consumer_group=group,
                    fetch_timeout=0.5,
                    ack_wait=5.0,
                    batch_size=50,
                )
            )
        from eventsource.bus.kafka import KafkaEventBus, KafkaEventBusConfig

        return KafkaEventBus(
            KafkaEventBusConfig(
                bootstrap_servers=self.url,
                topic_prefix=self.name,
                consumer_group=f"{self.name}-{group}",
                session_timeout_ms=6000,
                heartbeat_interval_ms=2000,
            )
        )

    async def prepare(self) -> None:
        """Create what must exist before anyone publishes (Kafka: the topic, 3 partitions)."""
        if self.kind != "kafka":
            return
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        config = self.bus().config
        admin = AIOKafkaAdminClient(bootstrap_servers=self.url)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(config.topic_name, 3, 1), NewTopic(config.dlq_topic_name, 1, 1)]
            )
        finally:
            await admin.close()

    async def cleanup(self) -> None:
        """Delete every stream, exchange, queue or topic the test's buses made."""
        await getattr(self, f"_cleanup_{self.kind}")()

    async def _cleanup_redis(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{self.name}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    async def _cleanup_rabbitmq(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel()
            for group in self.groups:
                queue = f"{self.name}.{group}"
                for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
                    await channel.queue_delete(name)
            for name in (self.name, f"{self.name}_dlq"):
                await channel.exchange_delete(name)
        finally:
            await connection.close()

    async def _cleanup_nats(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        config = self.bus().config
        client = await nats.connect(self.url)
        try:
            for stream in (config.stream_name, config.dlq_stream_name):
                with suppress(NotFoundError):
                    await client.jetstream().delete_stream(str(stream))
        finally:
            await client.close()

    async def _cleanup_kafka(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        config = self.bus().config
        admin = AIOKafkaAdminClient(bootstrap_servers=self.url)
        await admin.start()
        try:
            await admin.delete_topics([config.topic_name, config.dlq_topic_name])
        finally:
            await admin.close()
