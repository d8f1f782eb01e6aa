"""Trace context travels in message headers (issue 6): on every broker bus, the consumer's span
joins the publisher's trace, as a child of its `eventsource.event_bus.publish` span.

Real brokers (the factories of test_buses.py) and the real OpenTelemetry SDK with an in-memory
exporter (tests/otel_support.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import uuid4

import pytest

from extras import import_extra

import_extra("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402
from test_buses import bus_factory  # noqa: E402

from eventsource.events.base import DomainEvent  # noqa: E402
from eventsource.observability import (  # noqa: E402
    ATTR_EVENT_COUNT,
    ATTR_EVENT_ID,
    ATTR_HANDLER_COUNT,
    ATTR_MESSAGING_DESTINATION,
    ATTR_MESSAGING_OPERATION,
    ATTR_MESSAGING_SYSTEM,
)
from eventsource.testing.contract.bus import ContractPing, consuming, eventually  # noqa: E402
from otel_support import Telemetry, attributes_of  # noqa: E402

CONSUME_SPAN = {  # Redis names its per-message span "process" (API.md §11)
    "redis": "eventsource.event_bus.process",
    "rabbitmq": "eventsource.event_bus.consume",
    "nats": "eventsource.event_bus.consume",
    "kafka": "eventsource.event_bus.consume",
}


@pytest.mark.parametrize("backend", ["redis", "rabbitmq", "nats", "kafka"])
async def test_the_consumer_span_is_a_child_of_the_publish_span(
    backend: str, telemetry: Telemetry
) -> None:
    seen: list[tuple[DomainEvent, Any]] = []

    def handler(event: DomainEvent) -> None:
        seen.append((event, trace.get_current_span().get_span_context()))

    tracer = trace.get_tracer("tests.checkout")
    async with bus_factory(backend) as factory, factory() as bus:
        bus.subscribe(ContractPing, handler)
        async with consuming(bus):
            ping = _ping()
            with tracer.start_as_current_span("checkout") as checkout:
                await bus.publish([ping])
            await eventually(lambda: len(seen) == 1, f"the {backend} consumer to get the ping")

    publish = telemetry.one("eventsource.event_bus.publish")
    telemetry.assert_child(publish, telemetry.one("checkout"))
    assert publish.kind is SpanKind.PRODUCER
    destination = getattr(bus.config, "topic_name", None) or getattr(
        bus.config, "exchange_name", None
    ) or bus.config.stream_name
    assert attributes_of(
        publish, ATTR_MESSAGING_SYSTEM, ATTR_MESSAGING_DESTINATION, ATTR_MESSAGING_OPERATION,
        ATTR_EVENT_COUNT,
    ) == {
        ATTR_MESSAGING_SYSTEM: backend,
        ATTR_MESSAGING_DESTINATION: destination,
        ATTR_MESSAGING_OPERATION: "publish",
        ATTR_EVENT_COUNT: 1,
    }

    consume = telemetry.one(CONSUME_SPAN[backend])
    assert consume.kind is SpanKind.CONSUMER
    assert consume.context is not None
    assert consume.context.trace_id == checkout.get_span_context().trace_id
    telemetry.assert_child(consume, publish)
    assert attributes_of(consume, ATTR_MESSAGING_SYSTEM, ATTR_MESSAGING_OPERATION) == {
        ATTR_MESSAGING_SYSTEM: backend,
        ATTR_MESSAGING_OPERATION: "process",
    }
    dispatch = telemetry.one("eventsource.event_bus.dispatch")
    telemetry.assert_child(dispatch, consume)
    assert attributes_of(dispatch, ATTR_EVENT_ID, ATTR_HANDLER_COUNT) == {
        ATTR_EVENT_ID: str(ping.event_id),
        ATTR_HANDLER_COUNT: 1,
    }
    handle = telemetry.one("eventsource.event_bus.handle")
    telemetry.assert_child(handle, dispatch)
    # The handler itself runs inside that trace, so its own spans join it too.
    [(event, context)] = seen
    assert event.event_id == ping.event_id
    assert context.trace_id == checkout.get_span_context().trace_id
    assert context.span_id == handle.context.span_id


@pytest.mark.parametrize("backend", ["redis", "rabbitmq", "nats"])
async def test_without_tracing_no_trace_header_is_sent(backend: str, telemetry: Telemetry) -> None:
    """A bus with enable_tracing=False sends no trace headers and makes no spans."""
    seen: list[DomainEvent] = []
    async with bus_factory(backend) as factory, factory() as bus:
        quiet = type(bus)(replace(bus.config, enable_tracing=False))
        await quiet.connect()
        try:
            bus.subscribe(ContractPing, seen.append)
            async with consuming(bus):
                tracer = trace.get_tracer("tests.quiet")
                with tracer.start_as_current_span("quiet-checkout"):
                    await quiet.publish([_ping()])
                await eventually(lambda: len(seen) == 1, f"the {backend} consumer")
        finally:
            await quiet.shutdown(timeout=10)
    names = telemetry.names()
    assert "eventsource.event_bus.publish" not in names
    consume = telemetry.one(CONSUME_SPAN[backend])  # the consuming bus still traces ...
    assert consume.parent is None  # ... but no context came with the message


def _ping() -> ContractPing:
    return ContractPing(aggregate_id=uuid4(), aggregate_version=1)
