"""`RabbitMQEventBus`: a topic exchange, one durable queue per consumer group, a dead-letter
exchange and queue.

Delivery is at least once. Publishing waits for publisher confirms (many messages in flight) and
resends what the broker did not confirm. A consumer acks a message only after its handlers ran,
in batches (`multiple=True`, so in delivery order); anything unacked when a consumer stops or its
connection drops returns to the queue. A failed message is republished with its failure count in
the `x-retry-count` header, through a per-group retry queue whose message TTL is the back-off;
after `max_retries` failures, or at once when it cannot be decoded, it goes to the group's DLQ
with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import nullcontext, suppress
from typing import TYPE_CHECKING, Any

from eventsource._compat.aiormq import Delivery, Outgoing, publish_all
from eventsource._optional import optional
from eventsource._retry import Backoff, Pauses
from eventsource.bus._codec import (
    UndecodableMessageError,
    decode_message,
    describe_error,
    event_headers,
)
from eventsource.bus._rabbitmq_admin import RabbitMQAdmin, now
from eventsource.bus._rabbitmq_config import (
    BatchPublishError,
    DLQMessage,
    HealthCheckResult,
    QueueInfo,
    RabbitMQEventBusConfig,
    RabbitMQEventBusStats,
    ShutdownError,
)
from eventsource.bus._rabbitmq_messages import (
    ORIGINAL_KEY_HEADER,
    RETRY_HEADER,
    dead_letter_headers,
    forget_deaths_in,
    message_fields,
    original_routing_key,
    retry_count,
    routing_key,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError, RabbitMQNotAvailableError
from eventsource.stores.codec import encode_payload

if TYPE_CHECKING:
    import aio_pika
    import aiormq
    import aiormq.abc
    from aio_pika.abc import (
        AbstractRobustChannel,
        AbstractRobustConnection,
    )
else:
    aio_pika = optional("aio_pika")
    aiormq = optional("aiormq")  # aio-pika's own AMQP layer, for the hot paths

__all__ = [
    "RABBITMQ_AVAILABLE",
    "BatchPublishError",
    "DLQMessage",
    "HealthCheckResult",
    "QueueInfo",
    "RabbitMQEventBus",
    "RabbitMQEventBusConfig",
    "RabbitMQEventBusStats",
    "RabbitMQNotAvailableError",
    "ShutdownError",
]

logger = logging.getLogger(__name__)

RABBITMQ_AVAILABLE = aio_pika is not None
_CONFIRM_TIMEOUT = 30.0  # seconds a live channel may take to confirm; then resend
_RESEND_BACKOFF = Backoff(0.05, 1.0)


class RabbitMQEventBus(RabbitMQAdmin):
    """An `EventBus` over RabbitMQ: every group gets every event, a group's consumers share
    them."""

    def __init__(
        self,
        config: RabbitMQEventBusConfig | None = None,
        event_registry: EventRegistry | None = None,
    ) -> None:
        if aio_pika is None:
            raise RabbitMQNotAvailableError
        config = config or RabbitMQEventBusConfig()
        super().__init__(
            config, RabbitMQEventBusStats(), event_registry, logger, config.enable_tracing
        )
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._bindings: list[str] = []
        self._started_at: float | None = None
        self._shutdown = False
        self._ack_every = max(1, config.prefetch_count // 2)
        self._ack_tail: Delivery | None = None
        self._ack_channel: object = None
        self._ack_pending = 0
        self._consumer_live = False
        self._delivery_mode = 2 if config.durable else 1  # persistent only on durable queues

    # -- connection --------------------------------------------------------------------------

    async def _connect(self) -> None:
        config = self._config
        options: dict[str, Any] = {}
        if (context := config.build_ssl_context()) is not None:
            options["ssl_context"] = context
        if config.ssl_options is not None:
            options["ssl_options"] = config.ssl_options
        connection = await aio_pika.connect_robust(
            config.rabbitmq_url,
            heartbeat=config.heartbeat,
            reconnect_interval=config.reconnect_delay,
            client_properties={"connection_name": f"eventsource-{config.consumer_name}"},
            **options,
        )
        try:
            connection.reconnect_callbacks.add(self._on_reconnect)
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=False)
            publisher.return_callbacks.add(self._on_return)
            # The group's queue now, not when consuming starts: what is published from here
            # on waits in it, also for a consumer task that has not started yet.
            await self._declare_queues(publisher)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._publisher = connection, publisher
        self._started_at = time.monotonic()
        self._stats.connected_at = now()

    async def _disconnect(self) -> None:
        connection, self._connection, self._publisher = self._connection, None, None
        if connection is not None:
            await connection.close()

    def _on_reconnect(self, *_: object) -> None:
        self._stats.reconnections += 1
        logger.warning("Reconnected to RabbitMQ")

    def _on_return(self, *_: object) -> None:
        self._stats.publish_returns += 1  # unroutable: no queue bound for its key yet

    # -- publishing --------------------------------------------------------------------------

    def _outgoing(self, event: DomainEvent, trace: Mapping[str, str] | None = None) -> Outgoing:
        # Properties built directly: an `aio_pika.Message` per event is a cost publishing can skip.
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=self._delivery_mode,
            headers=event_headers(event, trace),  # type: ignore[arg-type]
            message_id=str(event.event_id),
            message_type=event.event_type,
            correlation_id=str(event.correlation_id),
        )
        return routing_key(event), encode_payload(event).encode(), properties

    def _refuse_if_shut_down(self) -> None:
        if self._shutdown:
            raise ShutdownError(
                "RabbitMQEventBus was shut down: it neither publishes nor consumes any more "
                "(create a new bus)"
            )

    async def publish(self, events: Sequence[DomainEvent], background: bool = False) -> None:
        """Send `events` in order; `background=True` returns at once. `ShutdownError` after
        `shutdown()`."""
        self._refuse_if_shut_down()
        await super().publish(events, background)

    async def _publish_events(self, events: Sequence[DomainEvent]) -> None:
        # Encode everything first: an unserialisable event fails the call before anything is sent.
        trace = self._trace_headers()
        outgoing = [self._outgoing(event, trace) for event in events]
        window = self._config.batch_size * self._config.max_concurrent_publishes
        for start in range(0, len(outgoing), window):
            await self._publish_confirmed(
                self._config.exchange_name, outgoing[start : start + window]
            )

    async def _send(self, exchange: str, outgoing: Sequence[Outgoing]) -> list[bool]:
        """Send all at once (frames go out in order), then wait for their confirms."""
        assert self._publisher is not None
        channel: Any = await asyncio.wait_for(
            self._publisher.get_underlay_channel(), self._config.max_reconnect_delay
        )
        confirms, release = await publish_all(channel, exchange, outgoing)
        # A confirm can be orphaned when the channel dies mid-send: never wait on a closed one.
        pending: set[asyncio.Future[Any]] = set(confirms)
        deadline = time.monotonic() + _CONFIRM_TIMEOUT
        try:
            while pending:
                _, pending = await asyncio.wait(pending, timeout=0.5)
                if pending and (channel.is_closed or time.monotonic() > deadline):
                    break
        finally:
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            release()
        return [not future.cancelled() and future.exception() is None for future in confirms]

    async def _publish_confirmed(
        self, exchange: str, outgoing: Sequence[Outgoing], patient: bool = True
    ) -> None:
        """Publish until every message is confirmed, resending the unconfirmed ones through
        reconnections for up to `max_reconnect_delay` (duplicates possible: at least once).
        Impatient: one attempt (a consumer leaves the message unacked instead)."""
        pending = list(outgoing)
        deadline = time.monotonic() + (self._config.max_reconnect_delay if patient else 0)
        pauses = Pauses(_RESEND_BACKOFF)
        while True:
            error: BaseException | None = None
            try:
                confirmed = await self._send(exchange, pending)
            except Exception as exc:  # any failure to send is retried
                confirmed, error = [False] * len(pending), exc
            done = sum(confirmed)
            self._stats.publish_confirms += done
            if exchange == self._config.exchange_name:
                self._stats.events_published += done
            if done:
                self._stats.last_publish_at = now()
            pending = [item for item, ok in zip(pending, confirmed, strict=True) if not ok]
            if not pending:
                return
            self._stats.last_error_at = now()
            if time.monotonic() > deadline or self._connection is None:
                raise EventBusError(f"{len(pending)} messages unconfirmed by RabbitMQ ({error})")
            logger.warning("%d messages unconfirmed (%s); resending", len(pending), error)
            await asyncio.sleep(pauses.next())

    async def publish_batch(
        self, events: Sequence[DomainEvent], preserve_order: bool = False
    ) -> dict[str, int]:
        """Publish in chunks of `batch_size`: `{"total", "published", "failed", "chunks"}`.
        Chunks go concurrently unless `preserve_order`, which stops at the first failed one.
        If any chunk failed, `BatchPublishError` carries these counts and the chunks' errors."""
        self._refuse_if_shut_down()
        await self.connect()
        trace = self._trace_headers()
        outgoing = [self._outgoing(event, trace) for event in events]
        size = self._config.batch_size
        chunks = [outgoing[start : start + size] for start in range(0, len(outgoing), size)]
        result = {"total": len(outgoing), "published": 0, "failed": 0, "chunks": len(chunks)}
        errors: list[Exception] = []
        name = self._config.exchange_name

        async def one(chunk: list[Outgoing]) -> bool:
            try:
                await self._publish_confirmed(name, chunk)
            except EventBusError as exc:
                result["failed"] += len(chunk)
                errors.append(exc)
                return False
            result["published"] += len(chunk)
            return True

        if preserve_order:
            for index, chunk in enumerate(chunks):
                if not await one(chunk):
                    result["failed"] += sum(len(rest) for rest in chunks[index + 1 :])
                    break
        else:
            limit = asyncio.Semaphore(self._config.max_concurrent_publishes)

            async def limited(chunk: list[Outgoing]) -> bool:
                async with limit:
                    return await one(chunk)

            await asyncio.gather(*(limited(chunk) for chunk in chunks))
        self._stats.batch_publishes += 1
        self._stats.batch_events_published += result["published"]
        if result["failed"]:
            self._stats.batch_partial_failures += 1
            raise BatchPublishError(
                f"{result['failed']} of {result['total']} events were not published "
                f"({len(errors)} failed chunks; the first: {errors[0]})",
                results=result,
                errors=errors,
            )
        return result

    # -- consuming ---------------------------------------------------------------------------

    async def start_consuming(self) -> None:
        """Consume until `stop_consuming()`; `ShutdownError` after `shutdown()`."""
        self._refuse_if_shut_down()
        await super().start_consuming()

    def start_consuming_in_background(self) -> asyncio.Task[None]:
        """`start_consuming()` in a task; `shutdown()` stops it."""
        self._refuse_if_shut_down()
        task = asyncio.create_task(self.start_consuming())
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    async def _consume(self) -> None:
        pauses = Pauses(Backoff(self._config.reconnect_delay, self._config.max_reconnect_delay))
        while not self._stopping:
            self._consumer_live = False
            try:
                await self._consume_session()
                pauses.reset()
            except Exception as exc:  # aiormq fails pending calls with bare Exceptions on close
                if self._consumer_live:  # it was consuming: a new outage, not a longer one
                    pauses.reset()
                self._stats.last_error_at = now()
                delay = pauses.next()
                logger.warning("RabbitMQ consumer interrupted (%r); resuming in %.2f s", exc, delay)
                if await self._stopped_within(delay):
                    break

    async def _consume_session(self) -> None:
        """Consume on a channel of our own: closing it returns every unacked message. Ends
        (to be resumed) when that channel closes under it."""
        channel = await self._conn.channel()
        assert self._stop_event is not None
        # Deliveries land in `inbox`; one event wakes the loop for a delivery, for stopping or
        # for a lost channel (a wait on several per message cost more than handling one).
        inbox: deque[Delivery] = deque()
        wakeup = asyncio.Event()
        stop_watch = asyncio.ensure_future(self._stop_event.wait())
        stop_watch.add_done_callback(lambda _: wakeup.set())
        try:
            await channel.set_qos(prefetch_count=self._config.prefetch_count)
            queue = await self._declare_queues(channel)
            # Consumed on the underlying aiormq channel: aio-pika's wrapping per message is
            # dropped, and so is its restoring of the consumer after a reconnection, which
            # is why a closed channel ends the session.
            underlay = await channel.get_underlay_channel()

            async def deliver(message: aiormq.abc.DeliveredMessage) -> None:
                inbox.append(Delivery(message))
                wakeup.set()

            tag = f"eventsource-{self._config.consumer_name}-{secrets.token_hex(3)}"
            await underlay.basic_consume(queue.name, deliver, consumer_tag=tag)
            underlay.closing.add_done_callback(lambda _: wakeup.set())
            self._consumer_live = True
            self._mark_subscribed()
            while not self._stopping:
                if inbox:
                    await self._process(inbox.popleft())
                    continue
                if underlay.is_closed:
                    raise EventBusError("the consuming channel closed")
                await self._flush_acks()  # all caught up: settle what is done before waiting
                wakeup.clear()
                if not inbox and not self._stopping and not underlay.is_closed:
                    await wakeup.wait()
        finally:
            stop_watch.cancel()
            await self._flush_acks()
            with suppress(Exception):
                await channel.close()

    async def _process(self, message: Delivery) -> None:
        try:
            channel = message.channel
        except aio_pika.exceptions.ChannelInvalidStateError:
            return  # delivered on a channel since lost: the broker redelivers it
        if self._ack_tail is not None and self._ack_channel is not channel:
            await self._flush_acks()
        self._stats.events_consumed += 1
        self._stats.last_consume_at = now()
        with self._consume_span(
            "eventsource.event_bus.consume",
            message.headers,
            {"messaging.message.id": message.message_id or ""},
        ):
            try:
                await self._settle(message)
            except Exception as exc:  # handler errors never get here: only I/O
                # Not acked: a multiple-ack must not cover it, so hand it back explicitly.
                logger.warning("Could not settle message %s (%r)", message.message_id, exc)
                await self._flush_acks()
                with suppress(Exception):
                    await message.nack(requeue=True)
                return
        self._ack_tail, self._ack_channel = message, channel
        self._ack_pending += 1
        if self._ack_pending >= self._ack_every:
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        """Ack every settled message up to the last one in one frame."""
        tail, self._ack_tail, self._ack_pending = self._ack_tail, None, 0
        if tail is None:
            return
        try:
            await tail.ack(multiple=True)
        except Exception as exc:  # aiormq fails a dropped drain with a bare one
            logger.warning("Acks lost with the channel (%s); the broker redelivers", exc)

    async def _settle(self, message: Delivery) -> None:
        """Handle the message; on failure republish it for a retry or to the DLQ."""
        headers = message.headers
        try:
            fields = message_fields(headers, message.body, message.type)
            keys = await self._message_keys(fields)  # personal data: None without it
            with nullcontext() if keys is None else keys.active():
                event = decode_message(fields, self._event_registry)
        except UndecodableMessageError as exc:
            self._stats.events_processed_failed += 1
            logger.error("Undecodable message %s: %s", message.message_id, exc.reason)  # noqa: TRY400
            await self._dead_letter(message, exc.reason, type(exc).__name__, retry_count(headers))
            return
        failures = await self._dispatch(event)
        if not failures:
            self._stats.events_processed_success += 1
            return
        self._stats.events_processed_failed += 1
        error = failures[0][1]
        count = retry_count(headers) + 1
        if count >= self._config.max_retries:
            await self._dead_letter(message, describe_error(error), type(error).__name__, count)
            return
        config = self._config
        delay = config.retry_delay(count)
        target = config.retry_queue_name if delay > 0 else config.queue_name
        retry_headers = {
            **forget_deaths_in(headers or {}, config.retry_queue_name),
            RETRY_HEADER: count,
            ORIGINAL_KEY_HEADER: original_routing_key(message.routing_key, headers),
        }
        retry = self._copy(message, retry_headers, delay or None)
        await self._publish_confirmed("", [(target, *retry)], patient=False)

    async def _dead_letter(
        self, message: Delivery, reason: str, error_type: str, retries: int
    ) -> None:
        config = self._config
        if not config.enable_dlq:
            logger.error("Dropping message %s (DLQ disabled): %s", message.message_id, reason)
            return
        headers = message.headers
        headers = dead_letter_headers(
            forget_deaths_in(headers or {}, config.retry_queue_name),
            reason=reason,
            error_type=error_type,
            retries=retries,
            original_key=original_routing_key(message.routing_key, headers),
            queue=config.queue_name,
            exchange=config.exchange_name,
            consumer_group=config.consumer_group,
        )
        await self._publish_confirmed(
            config.dlq_exchange_name,
            [(config.queue_name, *self._copy(message, headers))],
            patient=False,
        )
        self._stats.messages_sent_to_dlq += 1

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    async def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop consuming (unprocessed messages return to the queue), finish background
        publishing, disconnect."""
        await super().shutdown(timeout)
        self._shutdown = True
