"""`NATSEventBus`: a JetStream stream, one durable pull consumer per group, a DLQ stream.

Delivery is at least once: a message is acknowledged only after its handlers ran; a failure is
negatively acknowledged with a growing delay, and the delivery that reaches `max_retries` goes
to the DLQ stream with the reason. A message whose consumer died on its last delivery is
dead-lettered from the server's max-deliveries advisory. Publishing waits for JetStream's
acknowledgements, many in flight at once; the event id is the deduplication id, so a retried
publish is stored once. The client reconnects by itself; a dropped connection costs only
redeliveries of unacknowledged messages. A connection the server closed for good (after a
protocol error) is replaced at the next publish or fetch. Nothing sent exceeds the server's
`max_payload`: an event too large is refused before publishing, an oversize dead letter is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource._retry import Backoff, Pauses, retry
from eventsource.bus._codec import UndecodableMessageError, describe_error
from eventsource.bus._nats_admin import NATSAdmin
from eventsource.bus._nats_config import NATSEventBusConfig, NATSEventBusStats
from eventsource.bus._nats_messages import (
    check_sizes,
    dead_letter_headers,
    decode,
    encode,
    fit_dead_letter,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError, NATSNotAvailableError

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js
    import nats.js.api
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
else:
    nats = optional("nats")

__all__ = [
    "NATS_AVAILABLE",
    "NATSEventBus",
    "NATSEventBusConfig",
    "NATSEventBusStats",
    "NATSNotAvailableError",
]

logger = logging.getLogger(__name__)

NATS_AVAILABLE = nats is not None


class _ConnectionClosedError(EventBusError):
    """The server closed the bus's connection for good, and opening a new one failed."""


_TRANSIENT: tuple[type[Exception], ...] = (
    (nats.errors.Error, OSError, TimeoutError, _ConnectionClosedError) if nats is not None else ()
)
_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"
_PUBLISH_BACKOFF = Backoff(0.05, 1.0)
_CONSUME_BACKOFF = Backoff(0.05, 2.0)


class _UnacknowledgedError(Exception):
    """Some publishes of a chunk were not acknowledged (`count` of them, the last `error`)."""

    def __init__(self, count: int, error: BaseException | None) -> None:
        super().__init__(f"{count} events unacknowledged by JetStream: {error}")
        self.count, self.error = count, error


class NATSEventBus(NATSAdmin):
    """An `EventBus` over NATS JetStream: every group gets every event, a group's consumers
    share them."""

    def __init__(
        self, config: NATSEventBusConfig | None = None, event_registry: EventRegistry | None = None
    ) -> None:
        if nats is None:
            raise NATSNotAvailableError
        config = config or NATSEventBusConfig()
        super().__init__(config, NATSEventBusStats(), event_registry, logger, config.enable_tracing)
        self._nc: Client | None = None
        self._js: nats.js.JetStreamContext | None = None
        self._reopening = asyncio.Lock()

    # -- connection --------------------------------------------------------------------------

    async def _connect(self) -> None:
        config = self._config
        self._nc = await nats.connect(
            servers=config.servers,
            name=f"eventsource-{config.consumer_name}",
            connect_timeout=config.connect_timeout,
            reconnect_time_wait=config.reconnect_time_wait,
            max_reconnect_attempts=-1,  # a broker restart must not end the bus
            reconnected_cb=self._on_reconnected,
            disconnected_cb=self._on_disconnected,
            error_cb=self._on_error,
            user=config.user,
            password=config.password,
            token=config.token,
        )
        self._js = self._nc.jetstream(
            timeout=config.publish_timeout,
            publish_async_max_pending=max(4000, config.publish_chunk_size),
        )
        try:
            await self._ensure_streams()
        except BaseException:
            await self._disconnect()
            raise

    async def _disconnect(self) -> None:
        if self._nc is not None:
            nc, self._nc, self._js = self._nc, None, None
            await nc.close()

    async def _on_reconnected(self) -> None:
        self._stats.reconnections += 1
        logger.info("Reconnected to NATS")

    async def _on_disconnected(self) -> None:
        if self._nc is not None:  # not our own close
            logger.warning("Disconnected from NATS; reconnecting")

    async def _on_error(self, error: Exception) -> None:
        logger.warning("NATS connection error: %s", error)

    async def _live_client(self) -> Client:
        """The connection, open. nats-py reconnects after a dropped connection, but a server
        error (a maximum payload violation, say) closes the client for good: every call on it
        would fail, in every task sharing the bus. Such a client is replaced here."""
        nc = self._nc
        if (nc is None or nc.is_closed) and self._connected:
            async with self._reopening:  # one new connection, however many tasks find it closed
                if self._nc is None or self._nc.is_closed:
                    await self._reopen()
        if self._nc is None:
            raise EventBusError("NATSEventBus is not connected")
        return self._nc

    async def _live_jetstream(self) -> nats.js.JetStreamContext:
        await self._live_client()
        return self._jetstream

    async def _reopen(self) -> None:
        reason = (self._nc.last_error if self._nc is not None else None) or "no reason given"
        logger.warning("The NATS connection was closed (%s); opening a new one", reason)
        try:
            # Bounded: nats-py's first connect retries forever when the server is unreachable,
            # and the caller (a publish, a consumer that must stay stoppable) needs an answer.
            await asyncio.wait_for(self._connect(), 2 * self._config.connect_timeout)
        except _TRANSIENT as exc:
            message = f"the NATS connection is closed ({reason}) and reopening it failed: {exc}"
            raise _ConnectionClosedError(message) from exc
        self._stats.reconnections += 1

    # -- publishing --------------------------------------------------------------------------

    async def _publish_events(self, events: Sequence[DomainEvent]) -> None:
        # Encode everything first: an unserialisable event fails the call before any publish.
        config = self._config
        trace = self._trace_headers()
        messages = [
            (config.subject_for(e.aggregate_type, e.event_type), *encode(e, trace)) for e in events
        ]
        check_sizes(messages, (await self._live_client()).max_payload)
        size = config.publish_chunk_size
        for start in range(0, len(messages), size):
            await self._publish_chunk(messages[start : start + size])

    async def _publish_chunk(self, chunk: list[tuple[str, bytes, dict[str, str]]]) -> None:
        """Publish with every acknowledgement in flight at once; retry the unacknowledged (the
        deduplication id keeps a retried message that did arrive from being stored twice)."""
        pending = chunk

        async def publish_pending() -> None:
            nonlocal pending
            failed, error = await self._publish_once(pending)
            self._stats.events_published += len(pending) - len(failed)
            pending = failed
            if failed:
                raise _UnacknowledgedError(len(failed), error)

        def log(_attempt: int, error: BaseException, _delay: float) -> None:
            logger.warning("%s; retrying", error)

        try:
            await retry(
                publish_pending,
                attempts=self._config.publish_attempts,
                backoff=_PUBLISH_BACKOFF,
                retry_on=(_UnacknowledgedError,),
                on_retry=log,
            )
        except _UnacknowledgedError as exc:
            raise EventBusError(str(exc)) from exc.error

    async def _publish_once(
        self, messages: list[tuple[str, bytes, dict[str, str]]]
    ) -> tuple[list[tuple[str, bytes, dict[str, str]]], BaseException | None]:
        """The messages JetStream did not acknowledge, and one error."""
        futures: list[asyncio.Future[Any]] = []
        error: BaseException | None = None
        try:
            js = await self._live_jetstream()
            for subject, body, headers in messages:
                # No wait_stall: with one, every publish yields to the loop and is flushed in a
                # socket write of its own, several times slower. Chunks stay below the
                # client's in-flight limit, so the wait never stalls.
                futures.append(await js.publish_async(subject, body, headers=headers))
        except _TRANSIENT as exc:
            error = exc
        if futures:
            _done, not_done = await asyncio.wait(futures, timeout=self._config.publish_timeout)
            for future in not_done:
                future.cancel()
        failed = list(messages[len(futures) :])
        for message, future in zip(messages, futures, strict=False):
            if future.cancelled():
                failed.append(message)
                error = error or TimeoutError("no acknowledgement in time")
            elif (refusal := future.exception()) is not None:
                if isinstance(refusal, nats.js.errors.APIError) and not isinstance(
                    refusal, nats.js.errors.ServiceUnavailableError
                ):
                    raise EventBusError(f"JetStream refused {message[0]}: {refusal}") from refusal
                failed.append(message)
                error = refusal
        return failed, error

    # -- consuming ---------------------------------------------------------------------------

    async def _subscribe(self) -> Any:
        config = self._config
        consumer = nats.js.api.ConsumerConfig(
            durable_name=config.durable_name,
            ack_policy=nats.js.api.AckPolicy.EXPLICIT,
            deliver_policy=nats.js.api.DeliverPolicy.ALL,
            ack_wait=config.ack_wait,
            max_deliver=config.max_retries,
            max_ack_pending=config.max_ack_pending,
            filter_subject=config.subjects,
        )
        js = await self._live_jetstream()
        return await js.pull_subscribe(
            config.subjects, durable=config.durable_name, stream=config.stream_name, config=consumer
        )

    async def _consume(self) -> None:
        config = self._config
        nc: Client | None = None  # the connection `sub` and `advisory` live on
        sub: Any = None
        advisory: Any = None
        pauses = Pauses(_CONSUME_BACKOFF)
        try:
            while not self._stopping:
                try:
                    if nc is not None and nc.is_closed:  # by the server, for good: start anew
                        await self._drop(sub, advisory)
                        nc = sub = advisory = None
                    if sub is None:
                        nc = await self._live_client()
                        sub = await self._subscribe()
                        advisory = await nc.subscribe(
                            _ADVISORY.format(
                                stream=config.stream_name, consumer=config.durable_name
                            ),
                            queue=config.durable_name,  # one consumer of the group handles each
                            cb=self._on_max_deliveries,
                        )
                        self._mark_subscribed()
                    await self._process_batch(await self._fetch(sub))
                    pauses.reset()
                except nats.js.errors.NotFoundError:
                    logger.warning("Stream or consumer gone; recreating them")
                    await self._drop(sub, advisory)
                    sub = advisory = None
                    await self._ensure_streams()
                except _TRANSIENT as exc:
                    logger.warning("NATS unavailable while consuming (%s); retrying", exc)
                    if await self._stopped_within(pauses.next()):
                        break
        finally:
            await self._drop(sub, advisory)

    @staticmethod
    async def _drop(*subscriptions: Any) -> None:
        for subscription in subscriptions:
            if subscription is not None:
                # The server forgets the interests of a closed connection anyway.
                with contextlib.suppress(*_TRANSIENT):
                    await subscription.unsubscribe()

    async def _fetch(self, sub: Any) -> list[Msg]:
        """The next batch; empty after `fetch_timeout` without messages. Stopping does not
        abandon a fetch in flight: its messages are handed back to the group at once."""
        try:
            msgs: list[Msg] = await sub.fetch(
                self._config.batch_size, timeout=self._config.fetch_timeout
            )
        except TimeoutError:  # nats' own and asyncio's: no messages within fetch_timeout
            return []
        return msgs

    async def _process_batch(self, msgs: list[Msg]) -> None:
        for index, msg in enumerate(msgs):
            if self._stopping:
                # Not processed: redeliverable to the group's other consumers now, not after
                # ack_wait. Nothing unprocessed is acknowledged.
                for rest in msgs[index:]:
                    await rest.nak()
                return
            await self._process(msg)

    async def _process(self, msg: Msg) -> None:
        self._stats.events_consumed += 1
        deliveries = msg.metadata.num_delivered
        if deliveries > 1:
            self._stats.messages_redelivered += 1
        with self._consume_span(
            "eventsource.event_bus.consume",
            msg.headers,
            {"messaging.message.id": msg.metadata.sequence.stream},
        ):
            keys = None if self._personal is None else await self._message_keys({
                "event_type": (msg.headers or {}).get("event_type", ""),
                "payload": msg.data.decode(errors="replace"),
            })  # personal data
            try:
                with contextlib.nullcontext() if keys is None else keys.active():
                    event = decode(msg.data, msg.headers, self._event_registry)
            except UndecodableMessageError as exc:
                self._stats.events_processed_failed += 1
                logger.error("Undecodable message %s: %s", msg.subject, exc.reason)  # noqa: TRY400
                await self._dead_letter(msg, exc.reason, type(exc).__name__)
                return
            failures = await self._dispatch(event)
        if not failures:
            self._stats.events_processed_success += 1
            await msg.ack()
            return
        self._stats.events_processed_failed += 1
        if deliveries >= self._config.max_retries:
            error = failures[0][1]
            await self._dead_letter(msg, describe_error(error), type(error).__name__)
        else:
            await msg.nak(delay=self._config.retry_delay(deliveries))

    async def _dead_letter(self, msg: Msg, reason: str, error_type: str) -> None:
        """Store the message in the DLQ stream with the reason, then acknowledge it."""
        meta = msg.metadata
        await self._store_dead_letter(
            msg.data, msg.headers, msg.subject, meta.sequence.stream, meta.num_delivered,
            reason, error_type,
        )  # fmt: skip
        await msg.ack()

    async def _store_dead_letter(
        self,
        data: bytes,
        headers: dict[str, str] | None,
        subject: str,
        sequence: int,
        deliveries: int,
        reason: str,
        error_type: str,
    ) -> None:
        config = self._config
        if not config.enable_dlq:
            logger.error("Dropping message %s #%d (DLQ disabled): %s", subject, sequence, reason)
            return
        letter = dead_letter_headers(
            headers,
            reason=reason,
            error_type=error_type,
            deliveries=deliveries,
            consumer_group=config.consumer_group,
            subject=subject,
            sequence=sequence,
        )
        nc = await self._live_client()
        data, letter = fit_dead_letter(data, letter, nc.max_payload)
        await self._jetstream.publish(config.dlq_subject, data, headers=letter)
        self._stats.messages_sent_to_dlq += 1

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """A message delivered `max_retries` times without an acknowledgement (its consumers
        died or hung): the server gives up on it, so it goes to the DLQ."""
        try:
            info = json.loads(advisory.data)
            sequence, deliveries = int(info["stream_seq"]), int(info["deliveries"])
            js = await self._live_jetstream()
            stored = await js.get_msg(str(self._config.stream_name), sequence)
            reason = f"delivered {deliveries} times without an acknowledgement (max_deliver)"
            await self._store_dead_letter(
                stored.data or b"", stored.headers, stored.subject or "", sequence, deliveries,
                reason, "MaxDeliveriesExceeded",
            )  # fmt: skip
        except Exception:
            logger.exception("Could not dead-letter after a max-deliveries advisory")
