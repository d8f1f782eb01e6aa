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
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource.bus._broker import BrokerEventBus, stats_dict
from eventsource.bus._codec import (
    UndecodableMessageError,
    decode_message,
    describe_error,
    event_headers,
)
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
    DLQ_HEADERS,
    ORIGINAL_KEY_HEADER,
    RETRY_HEADER,
    dead_letter_headers,
    dlq_message,
    forget_deaths_in,
    get_death_count,
    get_death_info,
    get_first_death_exchange,
    get_first_death_queue,
    get_first_death_reason,
    get_original_routing_key,
    is_from_dlq,
    message_fields,
    original_routing_key,
    retry_count,
    routing_key,
    routing_key_for_class,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError, RabbitMQNotAvailableError
from eventsource.stores.codec import encode_payload

if TYPE_CHECKING:
    import aio_pika
    import aiormq
    import aiormq.abc
    import pamqp.body
    import pamqp.header
    from aio_pika.abc import (
        AbstractIncomingMessage,
        AbstractQueue,
        AbstractRobustChannel,
        AbstractRobustConnection,
    )
else:
    aio_pika = optional("aio_pika")
    if aio_pika is not None:  # its own AMQP layer and codec, for the publishing hot path
        import aiormq
        import aiormq.abc
        import pamqp.body
        import pamqp.header
    else:
        aiormq = pamqp = None

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
_TRANSIENT: tuple[type[BaseException], ...] = (
    (*aio_pika.exceptions.CONNECTION_EXCEPTIONS, TimeoutError) if aio_pika is not None else ()
)
_CONFIRM_TIMEOUT = 30.0  # seconds a live channel may take to confirm; then resend
_Outgoing = tuple[str, bytes, "aiormq.spec.Basic.Properties"]  # routing key, body, properties


def _now() -> datetime:
    return datetime.now(UTC)


# -- publishing a batch in one write -------------------------------------------------------------
#
# aiormq's `basic_publish` sends one message per call: a task, a lock, a queue hop and a socket
# write each (measured here: ~105 us of CPU a message in 100-event publishes, ~50 us written as
# one batch). A batch is sent as aiormq sends a message, but in one frame buffer: the
# confirmation futures are registered in the channel's `confirmations` under consecutive
# delivery tags (the broker numbers published messages in order on a confirming channel), so
# aiormq settles them, returns included, and fails them when the channel closes, exactly as for
# its own publishes.

_BATCH_ATTRIBUTES = (
    "confirmations",
    "message_id_delivery_tag",
    "delivery_tag",
    "write_queue",
    "max_content_size",
    "number",
    "lock",
    "create_future",
)


def _can_write_batch(channel: Any) -> bool:
    """Whether this aiormq channel has what `_write_batch` relies on (else publish one by one)."""
    confirms = getattr(channel, "publisher_confirms", False)
    return bool(confirms) and all(hasattr(channel, a) for a in _BATCH_ATTRIBUTES)


def _frames(exchange: str, outgoing: Sequence[_Outgoing], max_body: int) -> list[Any]:
    frames: list[Any] = []
    for key, body, properties in outgoing:
        frames.append(aiormq.spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=True))
        frames.append(pamqp.header.ContentHeader(properties=properties, body_size=len(body)))
        frames.extend(
            pamqp.body.ContentBody(body[start : start + max_body])
            for start in range(0, len(body), max_body)
        )
    return frames


async def _write_batch(
    channel: Any, exchange: str, outgoing: Sequence[_Outgoing]
) -> tuple[int, list[asyncio.Future[Any]]]:
    """Write every message in one go; the first delivery tag and a confirm future each."""
    for _, _, properties in outgoing:
        if not properties.message_id:  # returned messages are matched by message id
            properties.message_id = secrets.token_hex(16)
    payload = aiormq.abc.ChannelFrame.marshall(
        channel_number=channel.number,
        frames=_frames(exchange, outgoing, channel.max_content_size),
    )
    async with channel.lock:
        first = channel.delivery_tag + 1
        confirms: list[asyncio.Future[Any]] = []
        for tag, (_, _, properties) in enumerate(outgoing, start=first):
            confirm = channel.create_future()
            channel.confirmations[tag] = confirm
            channel.message_id_delivery_tag[properties.message_id] = tag
            confirms.append(confirm)
        channel.delivery_tag = first + len(outgoing) - 1
        try:
            await channel.write_queue.put(payload)
        except BaseException:
            # Nothing went out: the broker never numbered these, so reuse their tags.
            channel.delivery_tag = first - 1
            for confirm in confirms:
                confirm.cancel()
            _forget_message_ids(channel, first, outgoing)
            for tag in range(first, first + len(outgoing)):
                channel.confirmations.pop(tag, None)
            raise
    return first, confirms


def _forget_message_ids(channel: Any, first: int, outgoing: Sequence[_Outgoing]) -> None:
    mapping = channel.message_id_delivery_tag
    for tag, (_, _, properties) in enumerate(outgoing, start=first):
        if mapping.get(properties.message_id) == tag:
            del mapping[properties.message_id]


def _publish_one(channel: Any, exchange: str, item: _Outgoing) -> asyncio.Future[Any]:
    key, body, properties = item
    confirm: asyncio.Future[Any] = asyncio.ensure_future(
        channel.basic_publish(
            body,
            exchange=exchange,
            routing_key=key,
            properties=properties,
            mandatory=True,
            wait=False,  # the confirm is what counts; frames still go out in order
        )
    )
    return confirm


class _Delivery:
    """A consumed message read straight off aiormq, with the attributes of aio-pika's
    `IncomingMessage` that consuming uses. Building an `IncomingMessage` (two dozen guarded
    attribute writes) in a task of its own was about a quarter of the consumer's CPU."""

    __slots__ = (
        "_channel",
        "body",
        "content_type",
        "correlation_id",
        "delivery_mode",
        "delivery_tag",
        "headers",
        "message_id",
        "routing_key",
        "type",
    )

    def __init__(self, message: aiormq.abc.DeliveredMessage) -> None:
        properties = message.header.properties
        self._channel = message.channel
        self.body = message.body
        self.headers: dict[str, Any] = properties.headers or {}
        self.content_type = properties.content_type
        self.correlation_id = properties.correlation_id
        self.delivery_mode = properties.delivery_mode
        self.message_id = properties.message_id
        self.type = properties.message_type
        self.routing_key = message.routing_key
        self.delivery_tag = message.delivery_tag

    @property
    def channel(self) -> aiormq.abc.AbstractChannel:
        """The channel it came on; `ChannelInvalidStateError` once that is closed."""
        if self._channel.is_closed:
            raise aio_pika.exceptions.ChannelInvalidStateError
        return self._channel

    async def ack(self, multiple: bool = False) -> None:
        assert self.delivery_tag is not None
        # No drain: a lost ack only means a redelivery.
        await self.channel.basic_ack(self.delivery_tag, multiple=multiple, wait=False)

    async def nack(self, requeue: bool = True) -> None:
        assert self.delivery_tag is not None
        await self.channel.basic_nack(self.delivery_tag, requeue=requeue)


class RabbitMQEventBus(BrokerEventBus[RabbitMQEventBusConfig, RabbitMQEventBusStats]):
    """An `EventBus` over RabbitMQ: every group gets every event, a group's consumers share
    them (API.md §11.3)."""

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
        self._ack_tail: _Delivery | None = None
        self._ack_channel: object = None
        self._ack_pending = 0
        self._consumer_live = False
        self._delivery_mode = 2 if config.durable else 1  # persistent only on durable queues

    # What RabbitMQ (or this bus) recorded about a message's dead-lettering; they take an
    # aio-pika message, a `DLQMessage` or a headers mapping.
    get_death_count = staticmethod(get_death_count)
    get_first_death_queue = staticmethod(get_first_death_queue)
    get_first_death_reason = staticmethod(get_first_death_reason)
    get_first_death_exchange = staticmethod(get_first_death_exchange)
    get_original_routing_key = staticmethod(get_original_routing_key)
    is_from_dlq = staticmethod(is_from_dlq)
    get_death_info = staticmethod(get_death_info)

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
        self._stats.connected_at = _now()

    async def _disconnect(self) -> None:
        connection, self._connection, self._publisher = self._connection, None, None
        if connection is not None:
            await connection.close()

    def _on_reconnect(self, *_: object) -> None:
        self._stats.reconnections += 1
        logger.warning("Reconnected to RabbitMQ")

    def _on_return(self, *_: object) -> None:
        self._stats.publish_returns += 1  # unroutable: no queue bound for its key yet

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

    # -- publishing --------------------------------------------------------------------------

    def _outgoing(self, event: DomainEvent, trace: Mapping[str, str] | None = None) -> _Outgoing:
        # Properties built directly: an `aio_pika.Message` per event costs ~10% of publishing.
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

    async def _send(self, exchange: str, outgoing: Sequence[_Outgoing]) -> list[bool]:
        """Send all at once (frames go out in order), then wait for their confirms."""
        assert self._publisher is not None
        channel: Any = await asyncio.wait_for(
            self._publisher.get_underlay_channel(), self._config.max_reconnect_delay
        )
        first_tag: int | None = None
        if _can_write_batch(channel):
            first_tag, confirms = await _write_batch(channel, exchange, outgoing)
        else:
            confirms = [_publish_one(channel, exchange, item) for item in outgoing]
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
            if first_tag is not None:
                _forget_message_ids(channel, first_tag, outgoing)
        return [not future.cancelled() and future.exception() is None for future in confirms]

    async def _publish_confirmed(
        self, exchange: str, outgoing: Sequence[_Outgoing], patient: bool = True
    ) -> None:
        """Publish until every message is confirmed, resending the unconfirmed ones through
        reconnections for up to `max_reconnect_delay` (duplicates possible: at least once).
        Impatient: one attempt (a consumer leaves the message unacked instead)."""
        pending = list(outgoing)
        deadline = time.monotonic() + (self._config.max_reconnect_delay if patient else 0)
        pause = 0.05
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
                self._stats.last_publish_at = _now()
            pending = [item for item, ok in zip(pending, confirmed, strict=True) if not ok]
            if not pending:
                return
            self._stats.last_error_at = _now()
            if time.monotonic() > deadline or self._connection is None:
                raise EventBusError(f"{len(pending)} messages unconfirmed by RabbitMQ ({error})")
            logger.warning("%d messages unconfirmed (%s); resending", len(pending), error)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

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

        async def one(chunk: list[_Outgoing]) -> bool:
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

            async def limited(chunk: list[_Outgoing]) -> bool:
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
        delay = self._config.reconnect_delay
        while not self._stopping:
            self._consumer_live = False
            try:
                await self._consume_session()
                delay = self._config.reconnect_delay
            except Exception as exc:  # aiormq fails pending calls with bare Exceptions on close
                if self._consumer_live:  # it was consuming: a new outage, not a longer one
                    delay = self._config.reconnect_delay
                self._stats.last_error_at = _now()
                logger.warning("RabbitMQ consumer interrupted (%r); resuming in %.2f s", exc, delay)
                if await self._stopped_within(delay):
                    break
                delay = min(delay * 2, self._config.max_reconnect_delay)

    async def _consume_session(self) -> None:
        """Consume on a channel of our own: closing it returns every unacked message. Ends
        (to be resumed) when that channel closes under it."""
        channel = await self._conn.channel()
        assert self._stop_event is not None
        # Deliveries land in `inbox`; one event wakes the loop for a delivery, for stopping or
        # for a lost channel (a wait on several per message cost more than handling one).
        inbox: deque[_Delivery] = deque()
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
                inbox.append(_Delivery(message))
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

    async def _process(self, message: _Delivery) -> None:
        try:
            channel = message.channel
        except aio_pika.exceptions.ChannelInvalidStateError:
            return  # delivered on a channel since lost: the broker redelivers it
        if self._ack_tail is not None and self._ack_channel is not channel:
            await self._flush_acks()
        self._stats.events_consumed += 1
        self._stats.last_consume_at = _now()
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

    async def _settle(self, message: _Delivery) -> None:
        """Handle the message; on failure republish it for a retry or to the DLQ."""
        headers = message.headers
        try:
            fields = message_fields(headers, message.body, message.type)
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
        self, message: _Delivery, reason: str, error_type: str, retries: int
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

    def _copy(
        self,
        message: _Delivery | AbstractIncomingMessage,
        headers: dict[str, Any],
        expiration: float | None = None,
    ) -> tuple[bytes, aiormq.spec.Basic.Properties]:
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

    # -- inspection and the DLQ --------------------------------------------------------------

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
            with suppress(*_TRANSIENT):
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
                    headers = {k: v for k, v in message.headers.items() if k not in DLQ_HEADERS}
                    copy = self._copy(message, headers)
                    await self._publish_confirmed("", [(self._config.queue_name, *copy)])
                    await message.ack()
                    return True
            return False
        finally:
            with suppress(*_TRANSIENT):
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
            with suppress(*_TRANSIENT):
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
            with suppress(*_TRANSIENT):
                await channel.close()

    async def get_queue_info(self) -> QueueInfo:
        """The group's queue: ready messages, consumers, and whether anyone consumes it."""
        name = self._config.queue_name
        if not self.is_connected:
            return QueueInfo(name, 0, 0, "unknown", "not connected")
        try:
            messages, consumers = await self._queue_counts(name) or (0, 0)
        except _TRANSIENT as exc:
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
            "stats": stats_dict(self._stats),
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
        except _TRANSIENT as exc:
            return f"error: {describe_error(exc)}", None
        if counts is None:
            return "error: the queue does not exist", None
        return "accessible", counts

    # -- stats and lifecycle -----------------------------------------------------------------

    def get_stats(self) -> RabbitMQEventBusStats:
        return self._stats

    def reset_stats(self) -> None:
        self._stats = replace(RabbitMQEventBusStats(), connected_at=self._stats.connected_at)

    def get_stats_dict(self) -> dict[str, Any]:
        """The stats plus `is_connected`, `is_consuming` and `uptime_seconds`."""
        out = stats_dict(self._stats)
        out["is_connected"] = self.is_connected
        out["is_consuming"] = self.is_consuming
        started = self._started_at
        out["uptime_seconds"] = time.monotonic() - started if started is not None else 0.0
        return out

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    async def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop consuming (unprocessed messages return to the queue), finish background
        publishing, disconnect."""
        await super().shutdown(timeout)
        self._shutdown = True
