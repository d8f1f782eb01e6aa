"""The RabbitMQ bus's administration: declaring and binding a group's queue, retry queue and
DLQ; inspecting them, the dead letters, the bus's health and its stats (`RabbitMQEventBus` is
built on `RabbitMQAdmin`)."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventsource._compat.aiormq import Delivery, Outgoing
from eventsource._optional import optional
from eventsource.bus._broker import BrokerEventBus
from eventsource.bus._codec import describe_error
from eventsource.bus._rabbitmq_config import (
    DLQMessage,
    HealthCheckResult,
    QueueInfo,
    RabbitMQEventBusConfig,
    RabbitMQEventBusStats,
)
from eventsource.bus._rabbitmq_messages import (
    dlq_message,
    get_death_count,
    get_death_info,
    get_first_death_exchange,
    get_first_death_queue,
    get_first_death_reason,
    get_original_routing_key,
    is_from_dlq,
    replay_headers,
    routing_key_for_class,
)
from eventsource.events.base import DomainEvent
from eventsource.exceptions import EventBusError

if TYPE_CHECKING:
    import aio_pika
    import aiormq
    from aio_pika.abc import (
        AbstractIncomingMessage,
        AbstractQueue,
        AbstractRobustChannel,
        AbstractRobustConnection,
    )
else:
    aio_pika = optional("aio_pika")
    aiormq = optional("aiormq")

__all__ = ["TRANSIENT", "RabbitMQAdmin", "now"]

TRANSIENT: tuple[type[BaseException], ...] = (
    (*aio_pika.exceptions.CONNECTION_EXCEPTIONS, TimeoutError) if aio_pika is not None else ()
)


def now() -> datetime:
    """The time stamps of the stats: aware, UTC."""
    return datetime.now(UTC)


class RabbitMQAdmin(BrokerEventBus[RabbitMQEventBusConfig, RabbitMQEventBusStats]):
    """A RabbitMQ bus's topology and inspection; publishing and consuming are the subclass's."""

    _connection: AbstractRobustConnection | None
    _publisher: AbstractRobustChannel | None
    _bindings: list[str]
    _started_at: float | None
    _delivery_mode: int

    # What RabbitMQ (or this bus) recorded about a message's dead-lettering; they take an
    # aio-pika message, a `DLQMessage` or a headers mapping.
    get_death_count = staticmethod(get_death_count)
    get_first_death_queue = staticmethod(get_first_death_queue)
    get_first_death_reason = staticmethod(get_first_death_reason)
    get_first_death_exchange = staticmethod(get_first_death_exchange)
    get_original_routing_key = staticmethod(get_original_routing_key)
    is_from_dlq = staticmethod(is_from_dlq)
    get_death_info = staticmethod(get_death_info)

    @property
    def _conn(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise EventBusError("RabbitMQEventBus is not connected")
        return self._connection

    async def _declare_exchange(self, channel: AbstractRobustChannel) -> Any:
        config = self._config
        return await channel.declare_exchange(
            config.exchange_name,
            aio_pika.ExchangeType(config.exchange_type),
            durable=config.durable,
            auto_delete=config.auto_delete,
        )

    async def _declare_queues(self, channel: AbstractRobustChannel) -> AbstractQueue:
        """The group's queue bound to the exchange, its retry queue and its DLQ."""
        config = self._config
        exchange = await self._declare_exchange(channel)
        durable, auto_delete = config.durable, config.auto_delete
        queue = await channel.declare_queue(
            config.queue_name, durable=durable, auto_delete=auto_delete
        )
        for key in (config.get_effective_routing_key(), *self._bindings):
            await queue.bind(exchange, routing_key=key)
        # Expired messages flow from the retry queue back to the group's queue only.
        retry_args = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": config.queue_name}
        await channel.declare_queue(
            config.retry_queue_name, durable=durable, auto_delete=auto_delete, arguments=retry_args
        )
        if config.enable_dlq:
            dlx = await channel.declare_exchange(
                config.dlq_exchange_name, aio_pika.ExchangeType.DIRECT, durable=config.durable
            )
            dlq_args: dict[str, Any] = {}
            if config.dlq_message_ttl is not None:
                dlq_args["x-message-ttl"] = config.dlq_message_ttl
            if config.dlq_max_length is not None:
                dlq_args["x-max-length"] = config.dlq_max_length
            dlq = await channel.declare_queue(
                config.dlq_queue_name, durable=config.durable, arguments=dlq_args or None
            )
            await dlq.bind(dlx, routing_key=config.queue_name)
        return queue

    async def bind_event_type(self, event_class: type[DomainEvent]) -> None:
        """Also bind the group's queue to `event_class`'s routing key."""
        await self.bind_routing_key(routing_key_for_class(event_class))

    async def bind_routing_key(self, key: str) -> None:
        """Also bind the group's queue to `key` (now if connected, and on every consume)."""
        if key not in self._bindings:
            self._bindings.append(key)
        if self._publisher is not None:
            await self._declare_queues(self._publisher)

    # -- inspection, the DLQ and the stats ----------------------------------------------------

    async def _passive(self, channel: AbstractRobustChannel, name: str) -> AbstractQueue | None:
        try:
            return await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:  # 404: not declared yet
            return None

    async def get_dlq_messages(self, limit: int = 100) -> list[DLQMessage]:
        """Up to `limit` dead letters, oldest first; they stay in the DLQ."""
        await self.connect()
        channel = await self._conn.channel()
        letters: list[DLQMessage] = []
        try:
            queue = await self._passive(channel, self._config.dlq_queue_name)
            while queue is not None and len(letters) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                letters.append(
                    dlq_message(
                        message.message_id, message.routing_key, message.body, message.headers
                    )
                )
        finally:
            with suppress(*TRANSIENT):
                await channel.close()  # returns every message read to the DLQ
        return letters

    async def get_dlq_message_count(self) -> int:
        counts = await self._queue_counts(self._config.dlq_queue_name)
        return counts[0] if counts else 0

    async def replay_dlq_message(self, message_id: str) -> bool:
        """Send a dead letter back to this group's queue without its DLQ headers."""
        await self.connect()
        channel = await self._conn.channel()
        try:
            queue = await self._passive(channel, self._config.dlq_queue_name)
            while queue is not None:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    return False
                if message.message_id == message_id:
                    copy = self._copy(message, replay_headers(message.headers))
                    await self._publish_confirmed("", [(self._config.queue_name, *copy)])
                    await message.ack()
                    return True
            return False
        finally:
            with suppress(*TRANSIENT):
                await channel.close()

    async def purge_dlq(self) -> int:
        """Delete every dead letter of this group; return how many there were."""
        await self.connect()
        channel = await self._conn.channel()
        try:
            queue = await self._passive(channel, self._config.dlq_queue_name)
            if queue is None:
                return 0
            return int((await queue.purge()).message_count or 0)
        finally:
            with suppress(*TRANSIENT):
                await channel.close()

    async def _queue_counts(self, name: str) -> tuple[int, int] | None:
        """Ready messages and consumers of a queue; None if it does not exist."""
        await self.connect()
        channel = await self._conn.channel()
        try:
            queue = await self._passive(channel, name)
            if queue is None or queue.declaration_result is None:
                return None
            result = queue.declaration_result
            return int(result.message_count or 0), int(result.consumer_count or 0)
        finally:
            with suppress(*TRANSIENT):
                await channel.close()

    async def get_queue_info(self) -> QueueInfo:
        """The group's queue: ready messages, consumers, and whether anyone consumes it."""
        name = self._config.queue_name
        if not self.is_connected:
            return QueueInfo(name, 0, 0, "unknown", "not connected")
        try:
            messages, consumers = await self._queue_counts(name) or (0, 0)
        except TRANSIENT as exc:
            return QueueInfo(name, 0, 0, "error", describe_error(exc))
        return QueueInfo(name, messages, consumers, "running" if consumers else "idle")

    async def health_check(self) -> HealthCheckResult:
        """Connection, publishing channel, the group's queue and its DLQ, each as a word
        (queue: `accessible`, `not_initialized` or `error: ...`; DLQ also `disabled` or
        `inaccessible`); `error` says what is wrong; `details` names the topology and holds
        the stats. Healthy: connected, channel open, queue accessible (the DLQ does not count).
        """
        config = self._config
        problems: list[str] = []
        connection = self._connection
        if connection is None:
            connection_status = "disconnected"
            problems.append("Not connected to RabbitMQ")
        elif connection.is_closed:
            connection_status = "closed"
            problems.append("The RabbitMQ connection is closed")
        else:
            connection_status = "connected"
        publisher = self._publisher
        channel_status = (
            "not_initialized" if publisher is None else "closed" if publisher.is_closed else "open"
        )
        if channel_status != "open":
            problems.append(f"The publishing channel is {channel_status.replace('_', ' ')}")
        live = connection_status == "connected"
        queue_status, counts = "not_initialized", None
        if live:
            queue_status, counts = await self._probe(config.queue_name)
            if counts is None:
                problems.append(f"Queue {config.queue_name}: {queue_status}")
        dlq_status = "disabled"
        if config.enable_dlq:
            dlq_status = (await self._probe(config.dlq_queue_name))[0] if live else "inaccessible"
        details: dict[str, Any] = {
            "exchange": config.exchange_name,
            "queue": config.queue_name,
            "consumer_group": config.consumer_group,
            "consuming": self.is_consuming,
            "dlq_enabled": config.enable_dlq,
            **({"dlq_queue": config.dlq_queue_name} if config.enable_dlq else {}),
            "messages": counts[0] if counts else None,
            "consumers": counts[1] if counts else None,
            "stats": self._stats.get_stats_dict(),
        }
        return HealthCheckResult(
            healthy=not problems,
            connection_status=connection_status,
            channel_status=channel_status,
            queue_status=queue_status,
            dlq_status=dlq_status,
            error="; ".join(problems) or None,
            details=details,
        )

    async def _probe(self, name: str) -> tuple[str, tuple[int, int] | None]:
        """`"accessible"` and the queue's counts, or `"error: <why>"` and None."""
        try:
            counts = await self._queue_counts(name)
        except TRANSIENT as exc:
            return f"error: {describe_error(exc)}", None
        if counts is None:
            return "error: the queue does not exist", None
        return "accessible", counts

    def get_stats(self) -> RabbitMQEventBusStats:
        return self._stats

    def reset_stats(self) -> None:
        self._stats = replace(RabbitMQEventBusStats(), connected_at=self._stats.connected_at)

    def get_stats_dict(self) -> dict[str, Any]:
        """The stats plus `is_connected`, `is_consuming` and `uptime_seconds`."""
        out = self._stats.get_stats_dict()
        out["is_connected"] = self.is_connected
        out["is_consuming"] = self.is_consuming
        started = self._started_at
        out["uptime_seconds"] = time.monotonic() - started if started is not None else 0.0
        return out

    @abstractmethod
    async def _publish_confirmed(
        self, exchange: str, outgoing: Sequence[Outgoing], patient: bool = True
    ) -> None:
        """Publish until every message is confirmed."""

    def _copy(
        self,
        message: Delivery | AbstractIncomingMessage,
        headers: dict[str, Any],
        expiration: float | None = None,
    ) -> tuple[bytes, aiormq.spec.Basic.Properties]:
        """`message` to send again: its body, and its properties with `headers` (and an
        expiration of `expiration` seconds)."""
        properties = aiormq.spec.Basic.Properties(
            content_type=message.content_type,
            delivery_mode=int(message.delivery_mode or self._delivery_mode),
            headers=headers,
            message_id=message.message_id,
            message_type=message.type,
            correlation_id=message.correlation_id,
            expiration=None if expiration is None else str(max(1, round(expiration * 1000))),
        )
        return message.body, properties
