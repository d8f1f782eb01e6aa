"""What every broker bus shares: lifecycle, background publishing, stats and dispatch.

A broker module subclasses `BrokerEventBus` and supplies only driver calls: `_connect`,
`_disconnect`, `_publish_events` and `_consume` (which returns once `_stopping` is set).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from abc import abstractmethod
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from eventsource._attributes import ReadOnly
from eventsource._lifecycle import AsyncContext
from eventsource.bus._codec import UndecodableMessageError, message_essentials
from eventsource.bus._dispatch import SubscriberRegistry, SubscriptionMethods
from eventsource.bus._spans import BusSpans, bus_span
from eventsource.bus._stats import BrokerStats
from eventsource.bus.interface import EventBus, Handler, handler_name
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.observability.attributes import (
    ATTR_EVENT_COUNT,
    ATTR_MESSAGING_DESTINATION,
    ATTR_MESSAGING_OPERATION,
    ATTR_MESSAGING_SYSTEM,
)
from eventsource.observability.tracing import NO_SPAN, extract_trace_context, inject_trace_context
from eventsource.personal.protection import KeyRing, PersonalData

__all__ = ["BrokerEventBus", "default_consumer_name"]

# Set inside a consumer (and the handlers it runs), where stop_consuming must not wait for itself.
_in_consumer: ContextVar[bool] = ContextVar("eventsource_bus_in_consumer", default=False)

_NO_HEADERS: Mapping[str, str] = {}

ConfigT = TypeVar("ConfigT")
StatsT = TypeVar("StatsT", bound=BrokerStats)


def default_consumer_name() -> str:
    """`"<hostname>-<8 hex chars>"`: unique per bus, readable in broker tools."""
    return f"{socket.gethostname()}-{secrets.token_hex(4)}"


def _publish_attributes(
    bus: BrokerEventBus[Any, Any], events: Sequence[DomainEvent]
) -> dict[str, object]:
    return {ATTR_EVENT_COUNT: len(events), **bus._messaging_attributes("publish")}


class BrokerEventBus(
    AsyncContext, SubscriptionMethods, BusSpans, EventBus, Generic[ConfigT, StatsT]
):
    """The broker-independent half of a distributed bus: the contract every broker shares."""

    def __init__(
        self,
        config: ConfigT,
        stats: StatsT,
        event_registry: EventRegistry | None,
        logger: logging.Logger,
        enable_tracing: bool,
    ) -> None:
        self._config = config
        self._stats = stats
        self._event_registry = event_registry
        self._personal: PersonalData | None = None  # personal data: `PersonalData.attach`
        self._logger = logger
        self._init_tracing(logger.name, enable_tracing)
        self._messaging_system = logger.name.rpartition(".")[2]  # redis, rabbitmq, nats, kafka
        self._subscribers = SubscriberRegistry()
        self._background: set[asyncio.Task[None]] = set()
        self._connected = False
        self._consuming = False
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._subscribed = asyncio.Event()

    config: ReadOnly[ConfigT] = ReadOnly("_config")
    """The settings the bus was made with."""
    stats: ReadOnly[StatsT] = ReadOnly("_stats")
    """The bus's running counters."""
    is_connected: ReadOnly[bool] = ReadOnly("_connected")
    """Whether the broker connection is open."""
    is_consuming: ReadOnly[bool] = ReadOnly("_consuming")
    """Whether the bus is consuming (between `start_consuming` and its stop)."""

    def get_stats_dict(self) -> dict[str, Any]:
        return self._stats.get_stats_dict()

    async def connect(self) -> None:
        """Open the broker connection (idempotent)."""
        if not self._connected:
            await self._connect()
            self._connected = True

    async def disconnect(self) -> None:
        """Close the broker connection (idempotent); stop consuming first."""
        if self._connected:
            await self.stop_consuming()
            self._connected = False
            await self._disconnect()

    async def _enter_context(self) -> None:
        await self.connect()

    async def _exit_context(self) -> None:
        await self.shutdown()

    async def publish(self, events: Sequence[DomainEvent], background: bool = False) -> None:
        """Send `events` in order; `background=True` returns at once (await `shutdown`)."""
        if not events:
            return
        if background:
            task = asyncio.create_task(self._publish_now(list(events)))
            self._background.add(task)
            task.add_done_callback(self._background_done)
            return
        await self._publish_now(events)

    async def _publish_now(self, events: Sequence[DomainEvent]) -> None:
        await self.connect()
        personal = self._personal  # personal data: the batch's keys, sealing marked fields
        keys = None if personal is None else await personal.keys_for_events(events)
        if keys is None:
            await self._publish_in_span(events)
            return
        with keys.active():
            await self._publish_in_span(events)

    async def _message_keys(
        self, fields: Mapping[bytes, bytes] | Mapping[str, str]
    ) -> KeyRing | None:
        """The keys to open a consumed message's marked fields (None: nothing to open)."""
        if self._personal is None:
            return None
        try:
            event_type, _, payload = message_essentials(fields)
        except UndecodableMessageError:
            return None  # the decoder reports it
        if not event_type or payload is None:
            return None
        return await self._personal.keys_for_payloads(
            [(event_type, payload)], self._event_registry
        )

    @bus_span("eventsource.event_bus.publish", _publish_attributes, kind="producer")
    def _publish_in_span(self, events: Sequence[DomainEvent]) -> Awaitable[None]:
        return self._publish_events(events)

    def _destination(self) -> str | None:
        """The stream, topic or exchange messages go to (`messaging.destination`)."""
        for name in ("topic_name", "exchange_name", "stream_name"):
            value = getattr(self._config, name, None)
            if isinstance(value, str):
                return value
        return None

    def _messaging_attributes(self, operation: str) -> dict[str, object]:
        return {
            ATTR_MESSAGING_SYSTEM: self._messaging_system,
            ATTR_MESSAGING_DESTINATION: self._destination(),
            ATTR_MESSAGING_OPERATION: operation,
        }

    def _trace_headers(self) -> Mapping[str, str]:
        """The current trace context as message headers (W3C `traceparent`, ...), to send with
        every message of a publish; empty when not tracing. Call inside the publish span."""
        if not self._tracing_live():
            return _NO_HEADERS
        return inject_trace_context({})

    def _consume_span(
        self, name: str, headers: Mapping[Any, Any] | None, attributes: Mapping[str, object]
    ) -> AbstractContextManager[Any]:
        """The span of one consumed message, a child of the publisher's span whose context
        travelled in `headers` (`eventsource.event_bus.consume`, or `.process` on Redis)."""
        if not self._tracing_live():
            return NO_SPAN
        return self._create_span_context(
            name,
            {**self._messaging_attributes("process"), **attributes},
            kind="consumer",
            context=extract_trace_context(headers),
        )

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error("Background publish failed", exc_info=task.exception())

    async def start_consuming(self) -> None:
        """Consume until `stop_consuming()`; connects first if needed."""
        await self.connect()
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._consuming = True
        self._idle.clear()
        self._subscribed.clear()
        token = _in_consumer.set(True)
        try:
            await self._consume()
        finally:
            self._consuming = False
            self._idle.set()
            _in_consumer.reset(token)

    async def wait_until_consuming(self, timeout: float = 30.0) -> None:
        """Return once `start_consuming()` has subscribed: events published afterwards reach it."""
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    def _mark_subscribed(self) -> None:
        self._subscribed.set()

    async def stop_consuming(self) -> None:
        """Ask the consumer to stop after the message in hand; returns once it has."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        if not _in_consumer.get():
            await self._idle.wait()

    async def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop consuming, finish background publishing (cancelled at `timeout`), disconnect."""
        try:
            await asyncio.wait_for(self.stop_consuming(), timeout)
        except TimeoutError:
            self._logger.warning("Consumer did not stop within %s s", timeout)
        pending = list(self._background)
        if pending:
            _done, unfinished = await asyncio.wait(pending, timeout=timeout)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self.disconnect()

    async def _stopped_within(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early (True) when stopping."""
        if self._stop_event is None:
            await asyncio.sleep(seconds)
            return self._stopping
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            return self._stopping
        return True

    async def _dispatch(self, event: DomainEvent) -> list[tuple[Handler, Exception]]:
        """Run the event's handlers like `InMemoryEventBus`; return (and log) the failures."""
        failures = await self._run_handlers(self._subscribers.handlers_for(event), event)
        for handler, error in failures:
            self._stats.handler_errors += 1
            self._logger.error(
                "Handler %s failed on %s %s: %s",
                handler_name(handler),
                event.event_type,
                event.event_id,
                error,
                exc_info=error,
            )
        return failures

    @abstractmethod
    async def _connect(self) -> None:
        """Open connections."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Close connections."""

    @abstractmethod
    async def _publish_events(self, events: Sequence[DomainEvent]) -> None:
        """Send the events, batched; count them in the stats."""

    @abstractmethod
    async def _consume(self) -> None:
        """Receive, dispatch and acknowledge until `_stopping`; leave the unprocessed unacked."""
