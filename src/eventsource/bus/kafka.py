"""`KafkaEventBus` (API.md §11.2): one topic, consumer groups, keys = aggregate id, a DLQ topic.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource.bus._broker import BrokerEventBus
from eventsource.bus._codec import UndecodableMessageError, decode_message, describe_error
from eventsource.bus._kafka_config import KafkaEventBusConfig, KafkaEventBusStats
from eventsource.bus._kafka_records import (
    dead_letter_headers,
    encode,
    header_list,
    header_map,
    replay_count,
    replay_headers,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError, KafkaNotAvailableError

if TYPE_CHECKING:
    import aiokafka
    import aiokafka.errors
    import aiokafka.helpers
else:
    aiokafka = optional("aiokafka")
    if aiokafka is not None:
        optional("aiokafka.errors")
        optional("aiokafka.helpers")

__all__ = [
    "KAFKA_AVAILABLE",
    "KafkaEventBus",
    "KafkaEventBusConfig",
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
        self._auto_reconnect = True

    # -- connection --------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        config = self._config
        options: dict[str, Any] = {
            "bootstrap_servers": config.bootstrap_servers,
            "security_protocol": config.security_protocol,
        }
        if config.uses_ssl:
            context = aiokafka.helpers.create_ssl_context(
                cafile=config.ssl_cafile, certfile=config.ssl_certfile, keyfile=config.ssl_keyfile
            )
            context.check_hostname = config.ssl_check_hostname
            options["ssl_context"] = context
        if config.sasl_mechanism is not None:
            options["sasl_mechanism"] = config.sasl_mechanism
            options["sasl_plain_username"] = config.sasl_username
            options["sasl_plain_password"] = config.sasl_password
        return options

    async def _connect(self) -> None:
        config = self._config
        acks = config.acks if config.acks == "all" else int(config.acks)
        producer = aiokafka.AIOKafkaProducer(
            client_id=f"eventsource-{config.consumer_name}",
            acks=acks,
            compression_type=config.compression_type,
            max_batch_size=config.batch_size,
            linger_ms=config.linger_ms,
            **self._client_options(),
        )
        await producer.start()
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
        try:
            # Sends return once queued; the producer batches them and acks arrive together.
            futures = [
                await producer.send(topic, value=body, key=key, headers=header_list(headers))
                for key, body, headers in records
            ]
            await asyncio.gather(*futures)
        except _TRANSIENT as exc:
            self._stats.last_error_at = datetime.now(UTC)
            raise EventBusError(f"Kafka publish failed: {exc}") from exc
        self._stats.events_published += len(records)
        self._stats.last_publish_at = datetime.now(UTC)

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
        config = self._config
        topics = (topic,) if topic is not None else ()
        return aiokafka.AIOKafkaConsumer(
            *topics,
            group_id=group,
            client_id=f"eventsource-{config.consumer_name}",
            enable_auto_commit=False,
            auto_offset_reset=offset_reset or config.auto_offset_reset,
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_interval_ms=config.max_poll_interval_ms,
            **self._client_options(),
        )

    async def _consume(self) -> None:
        delay = self._config.retry_base_delay or 0.1
        while not self._stopping:
            consumer = self._new_consumer(None, self._config.consumer_group)
            consumer.subscribe([self._config.topic_name], listener=_rebalances(self._stats))
            try:
                await consumer.start()
                self._mark_subscribed()
                while not self._stopping:
                    await self._consume_batch(consumer)
                    delay = self._config.retry_base_delay or 0.1
            except _TRANSIENT as exc:
                self._stats.last_error_at = datetime.now(UTC)
                if not self._auto_reconnect:
                    raise
                self._stats.reconnections += 1
                logger.warning("Kafka consumer failed (%s); restarting in %.1f s", exc, delay)
                if await self._stopped_within(delay):
                    break
                delay = min(delay * 2, self._config.retry_max_delay)
            finally:
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
                    offsets[partition] = record.offset + 1
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
            try:
                event = decode_message(fields, self._event_registry)
            except UndecodableMessageError as exc:
                self._stats.events_processed_failed += 1
                logger.error("Undecodable record at offset %d: %s", record.offset, exc.reason)  # noqa: TRY400
                await self._dead_letter(record, exc.reason, type(exc).__name__, str(exc), 0)
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
        return True

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


def _rebalances(stats: KafkaEventBusStats) -> aiokafka.ConsumerRebalanceListener:
    """A listener counting the group's rebalances (built here: its base needs aiokafka)."""

    class Rebalances(aiokafka.ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            return None

        async def on_partitions_assigned(self, assigned: Any) -> None:
            stats.rebalance_count += 1

    return Rebalances()


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
