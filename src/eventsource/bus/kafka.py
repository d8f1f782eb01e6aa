"""`KafkaEventBus`: one topic, consumer groups, keys = aggregate id, a DLQ topic.

The partition key is the aggregate id, so one aggregate's events stay in order on one partition.
Offsets are committed only after the handlers of every earlier message of the partition ran, so
a crash or a rebalance redelivers what was not yet committed (at least once). A failing message
is retried in place with a jittered backoff; after `max_retries` attempts it goes to the DLQ
topic with the reason in `dlq_*` headers, and the partition moves on.

Tested against a real broker only when `EVENTSOURCE_TEST_KAFKA_BOOTSTRAP` names one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource._retry import Backoff, Pauses
from eventsource.bus._broker import BrokerEventBus
from eventsource.bus._codec import UndecodableMessageError, decode_message, describe_error
from eventsource.bus._dispatch import BoundHandler
from eventsource.bus._kafka_config import KafkaEventBusConfig, KafkaEventBusStats
from eventsource.bus._kafka_metrics import (
    CONNECTIONS_ACTIVE,
    CONSUMER_LAG,
    METER_NAME,
    KafkaEventBusMetrics,
    kafka_metrics,
)
from eventsource.bus._kafka_records import (
    dead_letter_headers,
    encode,
    header_list,
    header_map,
    replay_count,
    replay_headers,
)
from eventsource.bus.interface import Handler, handler_name
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError, KafkaNotAvailableError
from eventsource.observability.metrics import metrics_live, observe_gauge
from eventsource.observability.tracing import OTEL_AVAILABLE

if TYPE_CHECKING:
    import aiokafka
    import aiokafka.errors
else:
    aiokafka = optional("aiokafka")
    if aiokafka is not None:
        optional("aiokafka.errors")

__all__ = [
    "KAFKA_AVAILABLE",
    "OTEL_AVAILABLE",
    "KafkaEventBus",
    "KafkaEventBusConfig",
    "KafkaEventBusMetrics",
    "KafkaEventBusStats",
    "KafkaNotAvailableError",
]

logger = logging.getLogger(__name__)

KAFKA_AVAILABLE = aiokafka is not None
_TRANSIENT: tuple[type[Exception], ...] = (
    (aiokafka.errors.KafkaError, OSError) if aiokafka is not None else ()
)


class KafkaEventBus(BrokerEventBus[KafkaEventBusConfig, KafkaEventBusStats]):
    """An `EventBus` over Kafka: every group gets every event, a group's consumers share the
    topic's partitions."""

    def __init__(
        self, config: KafkaEventBusConfig | None = None, event_registry: EventRegistry | None = None
    ) -> None:
        if aiokafka is None:
            raise KafkaNotAvailableError
        config = config or KafkaEventBusConfig()
        super().__init__(
            config, KafkaEventBusStats(), event_registry, logger, config.enable_tracing
        )
        self._producer: aiokafka.AIOKafkaProducer | None = None
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._positions: dict[Any, int] = {}  # partition -> next offset to handle
        self._auto_reconnect = True
        if config.enable_metrics:
            for gauge, read, unit, description in _GAUGES:
                observe_gauge(
                    gauge, self, read, unit=unit, description=description, meter_name=METER_NAME
                )

    def _metrics(self) -> KafkaEventBusMetrics | None:
        """The instruments when `enable_metrics` is on and a meter provider records."""
        if self._config.enable_metrics and metrics_live():
            return kafka_metrics()
        return None

    def get_handlers_for_event(self, event_type_name: str) -> list[BoundHandler]:
        """The handlers an event of this type (class name or `event_type`) runs: its class's,
        then the wildcard ones; each `await bound.handle(event)` whatever its form."""
        return [BoundHandler(h) for h in self._subscribers.handlers_named(event_type_name)]

    # -- connection --------------------------------------------------------------------------

    async def _connect(self) -> None:
        producer = aiokafka.AIOKafkaProducer(**self._config.get_producer_config())
        try:
            await producer.start()
        except Exception as exc:
            if (metrics := self._metrics()) is not None:
                metrics.connection_failed(exc)
            raise
        self._producer = producer
        self._stats.connected_at = datetime.now(UTC)

    async def _disconnect(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    @property
    def _kafka(self) -> aiokafka.AIOKafkaProducer:
        if self._producer is None:
            raise EventBusError("KafkaEventBus is not connected")
        return self._producer

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop consuming, finish background publishing, disconnect (`shutdown_timeout` when
        `timeout` is None)."""
        await super().shutdown(self._config.shutdown_timeout if timeout is None else timeout)

    # -- publishing --------------------------------------------------------------------------

    async def _publish_events(self, events: Sequence[DomainEvent]) -> None:
        # Encode everything first: an unserialisable event fails the call before any send.
        trace = self._trace_headers()
        records = [encode(event, trace) for event in events]
        producer = self._kafka
        topic = self._config.topic_name
        metrics = self._metrics()
        start = time.perf_counter()
        try:
            # Sends return once queued; the producer batches them and acks arrive together.
            futures = [
                await producer.send(topic, value=body, key=key, headers=header_list(headers))
                for key, body, headers in records
            ]
            await asyncio.gather(*futures)
        except _TRANSIENT as exc:
            self._stats.last_error_at = datetime.now(UTC)
            if metrics is not None:
                metrics.publish_failed(topic, [e.event_type for e in events], exc)
            raise EventBusError(f"Kafka publish failed: {exc}") from exc
        self._stats.events_published += len(records)
        self._stats.last_publish_at = datetime.now(UTC)
        if metrics is not None:
            metrics.published(topic, [e.event_type for e in events], time.perf_counter() - start)

    # -- consuming ---------------------------------------------------------------------------

    async def start_consuming(self, auto_reconnect: bool = True) -> None:
        """Consume until `stop_consuming()`; with `auto_reconnect`, broker errors restart the
        consumer after a pause instead of ending it."""
        self._auto_reconnect = auto_reconnect
        await super().start_consuming()

    def start_consuming_in_background(self) -> asyncio.Task[None]:
        """`start_consuming()` in a task (stopped by `stop_consuming()` or `shutdown()`)."""
        task = asyncio.create_task(self.start_consuming())
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _new_consumer(
        self, topic: str | None, group: str | None, offset_reset: str | None = None
    ) -> aiokafka.AIOKafkaConsumer:
        options = {**self._config.get_consumer_config(), "group_id": group}
        if offset_reset is not None:
            options["auto_offset_reset"] = offset_reset
        topics = (topic,) if topic is not None else ()
        return aiokafka.AIOKafkaConsumer(*topics, **options)

    async def _consume(self) -> None:
        config = self._config
        pauses = Pauses(Backoff(config.retry_base_delay or 0.1, config.retry_max_delay))
        while not self._stopping:
            consumer = self._new_consumer(None, self._config.consumer_group)
            consumer.subscribe([self._config.topic_name], listener=_rebalances(self))
            try:
                await consumer.start()
                self._consumer = consumer
                self._mark_subscribed()
                while not self._stopping:
                    await self._consume_batch(consumer)
                    pauses.reset()
            except _TRANSIENT as exc:
                self._stats.last_error_at = datetime.now(UTC)
                if not self._auto_reconnect:
                    raise
                self._stats.reconnections += 1
                if (metrics := self._metrics()) is not None:
                    metrics.connection_failed(exc)
                    metrics.reconnected()
                delay = pauses.next()
                logger.warning("Kafka consumer failed (%s); restarting in %.1f s", exc, delay)
                if await self._stopped_within(delay):
                    break
            finally:
                self._consumer = None
                self._positions.clear()
                await consumer.stop()

    async def _consume_batch(self, consumer: aiokafka.AIOKafkaConsumer) -> None:
        """Process one poll, partition by partition; commit each partition's processed prefix."""
        batches = await self._poll(consumer)
        offsets: dict[Any, int] = {}
        try:
            for partition, records in batches.items():
                for record in records:
                    if self._stopping or not await self._process(record):
                        return  # the rest stays uncommitted for the group
                    offsets[partition] = self._positions[partition] = record.offset + 1
        finally:
            if offsets:
                await consumer.commit(offsets)

    async def _poll(self, consumer: aiokafka.AIOKafkaConsumer) -> dict[Any, list[Any]]:
        poll = asyncio.ensure_future(consumer.getmany(timeout_ms=1000, max_records=500))
        batches: dict[Any, list[Any]]
        if self._stop_event is None:
            batches = await poll
            return batches
        stop = asyncio.ensure_future(self._stop_event.wait())
        await asyncio.wait({poll, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not poll.done():
            poll.cancel()
            await asyncio.gather(poll, return_exceptions=True)
            return {}
        batches = poll.result()
        return batches

    async def _process(self, record: Any) -> bool:
        """Handle one record with retries; False if stopped before it was settled."""
        start = time.perf_counter()
        settled = await self._settle(record)
        if settled and (metrics := self._metrics()) is not None:
            event_type = header_map(record.headers).get("event_type", "")
            elapsed = time.perf_counter() - start
            metrics.consumed(record.topic, record.partition, event_type, elapsed)
        return settled

    async def _settle(self, record: Any) -> bool:
        self._stats.events_consumed += 1
        self._stats.last_consume_at = datetime.now(UTC)
        headers = header_map(record.headers)
        with self._consume_span(
            "eventsource.event_bus.consume",
            headers,
            {
                "messaging.kafka.partition": record.partition,
                "messaging.kafka.offset": record.offset,
            },
        ):
            fields = {
                b"event_type": headers.get("event_type", "").encode(),
                b"event_id": headers.get("event_id", "").encode(),
                b"payload": record.value or b"",
            }
            keys = await self._message_keys(fields)  # personal data: None without it
            try:
                with nullcontext() if keys is None else keys.active():
                    event = decode_message(fields, self._event_registry)
            except UndecodableMessageError as exc:
                self._stats.events_processed_failed += 1
                logger.error("Undecodable record at offset %d: %s", record.offset, exc.reason)  # noqa: TRY400
                await self._dead_letter(record, exc.reason, type(exc).__name__, str(exc), 0)
                self._count_dead_letter("undecodable", type(exc).__name__)
                return True
            for attempt in range(1, self._config.max_retries + 1):
                failures = await self._dispatch(event)
                if not failures:
                    self._stats.events_processed_success += 1
                    return True
                if attempt < self._config.max_retries and await self._stopped_within(
                    self._config.retry_delay(attempt)
                ):
                    return False
        self._stats.events_processed_failed += 1
        error = failures[0][1]
        reason = describe_error(error)
        await self._dead_letter(record, reason, type(error).__name__, str(error), attempt)
        self._count_dead_letter("max_retries_exceeded", type(error).__name__)
        return True

    def _count_dead_letter(self, reason: str, error_type: str) -> None:
        if self._config.enable_dlq and (metrics := self._metrics()) is not None:
            metrics.dead_lettered(reason, error_type)

    async def _call_handler(self, handler: Handler, event: DomainEvent) -> None:
        metrics = self._metrics()
        if metrics is None:
            await super()._call_handler(handler, event)
            return
        start, error = time.perf_counter(), None
        try:
            await super()._call_handler(handler, event)
        except Exception as exc:
            error = exc
            raise
        finally:
            elapsed = time.perf_counter() - start
            metrics.handled(handler_name(handler), event.event_type, elapsed, error)

    async def _dead_letter(
        self, record: Any, reason: str, error_type: str, message: str, retries: int
    ) -> None:
        config = self._config
        self._stats.last_error_at = datetime.now(UTC)
        if not config.enable_dlq:
            logger.error("Dropping record at offset %d (DLQ disabled): %s", record.offset, reason)
            return
        headers = dead_letter_headers(
            header_map(record.headers),
            reason=reason,
            error_type=error_type,
            error_message=message,
            retries=retries,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            consumer_group=config.consumer_group,
        )
        await self._kafka.send_and_wait(
            config.dlq_topic_name, value=record.value, key=record.key, headers=header_list(headers)
        )
        self._stats.messages_sent_to_dlq += 1

    # -- the DLQ and introspection -----------------------------------------------------------

    async def get_topic_info(self) -> dict[str, Any]:
        """`{topic, partitions, consumer_group, connected, consuming}`."""
        if not self.is_connected:
            raise RuntimeError("KafkaEventBus is not connected")
        partitions = await self._kafka.partitions_for(self._config.topic_name)
        return {
            "topic": self._config.topic_name,
            "partitions": len(partitions or ()),
            "consumer_group": self._config.consumer_group,
            "connected": self.is_connected,
            "consuming": self.is_consuming,
        }

    async def get_dlq_messages(
        self, limit: int = 100, timeout_ms: int = 5000, use_consumer_group: bool = False
    ) -> list[dict[str, Any]]:
        """Dead letters from the start of the DLQ topic (or, with `use_consumer_group`, those
        the DLQ group has not read yet; their offsets are then committed)."""
        config = self._config
        group = (
            (config.dlq_consumer_group or f"{config.consumer_group}-dlq")
            if (use_consumer_group)
            else None
        )
        consumer = self._new_consumer(config.dlq_topic_name, group, "earliest")
        out: list[dict[str, Any]] = []
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=limit)
            for records in batches.values():
                out.extend(_dead_letter_dict(record) for record in records)
            if group is not None and out:
                await consumer.commit()
        finally:
            await consumer.stop()
        return sorted(out, key=lambda m: (m["timestamp"], m["partition"], m["offset"]))[:limit]

    async def get_dlq_message_count(self) -> int:
        """Messages currently held by the DLQ topic (end minus beginning offsets)."""
        consumer = self._new_consumer(None, None)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self._config.dlq_topic_name) or set()
            tps = [aiokafka.TopicPartition(self._config.dlq_topic_name, p) for p in partitions]
            if not tps:
                return 0
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            return sum(ends[tp] - starts[tp] for tp in tps)
        finally:
            await consumer.stop()

    async def replay_dlq_message(self, partition: int, offset: int, force: bool = False) -> bool:
        """Publish a dead letter again on the main topic; refused (False) once it was replayed
        `dlq_max_replay_attempts` times unless `force`; False if absent."""
        await self.connect()
        config = self._config
        consumer = self._new_consumer(None, None)
        await consumer.start()
        try:
            tp = aiokafka.TopicPartition(config.dlq_topic_name, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            batches = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        finally:
            await consumer.stop()
        records = [r for r in batches.get(tp, []) if r.offset == offset]
        if not records:
            return False
        headers = header_map(records[0].headers)
        if replay_count(headers) >= config.dlq_max_replay_attempts and not force:
            logger.warning("Dead letter %d/%d was replayed too often", partition, offset)
            return False
        await self._kafka.send_and_wait(
            config.topic_name,
            value=records[0].value,
            key=records[0].key,
            headers=header_list(replay_headers(headers)),
        )
        return True


def _rebalances(bus: KafkaEventBus) -> aiokafka.ConsumerRebalanceListener:
    """A listener counting the group's rebalances (built here: its base needs aiokafka)."""

    class Rebalances(aiokafka.ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            return None

        async def on_partitions_assigned(self, assigned: Any) -> None:
            bus.stats.rebalance_count += 1
            if (metrics := bus._metrics()) is not None:
                metrics.rebalanced(bus.config.consumer_group)

    return Rebalances()


def _connection_reading(bus: KafkaEventBus) -> list[tuple[float, dict[str, Any]]]:
    group = {"messaging.kafka.consumer_group": bus.config.consumer_group}
    return [(1 if bus.is_connected else 0, group)]


def _lag_reading(bus: KafkaEventBus) -> list[tuple[float, dict[str, Any]]]:
    """Per partition consumed here: the records behind its high-water mark."""
    consumer = bus._consumer
    if consumer is None:
        return []
    readings: list[tuple[float, dict[str, Any]]] = []
    for partition, position in list(bus._positions.items()):
        highwater = consumer.highwater(partition)
        if highwater is None:
            continue
        attributes = {
            "messaging.kafka.consumer_group": bus.config.consumer_group,
            "messaging.destination": partition.topic,
            "messaging.kafka.partition": partition.partition,
        }
        readings.append((max(0, highwater - position), attributes))
    return readings


_GAUGES = (
    (CONNECTIONS_ACTIVE, _connection_reading, "connections", "1 while connected, else 0"),
    (CONSUMER_LAG, _lag_reading, "messages", "Records behind the partition's high-water mark"),
)


def _dead_letter_dict(record: Any) -> dict[str, Any]:
    headers = header_map(record.headers)
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode(errors="replace") if record.key else None,
        "timestamp": record.timestamp,
        "headers": headers,
        "payload": (record.value or b"").decode(errors="replace"),
        "replay_count": replay_count(headers),
    }
