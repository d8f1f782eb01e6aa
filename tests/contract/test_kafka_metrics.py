"""The Kafka bus's `kafka.eventbus.*` metrics on a real broker (issue 20, group 20).

Runs only when `EVENTSOURCE_TEST_KAFKA_BOOTSTRAP` names a broker (the factory of test_buses.py
skips otherwise, in CI too); the instruments themselves are unit-tested without one
(tests/unit/test_kafka_config_and_metrics.py).
"""

from __future__ import annotations

from uuid import uuid4

from extras import import_extra

import_extra("opentelemetry.sdk")

from test_buses import bus_factory  # noqa: E402

from eventsource.events.base import DomainEvent  # noqa: E402
from eventsource.testing.contract.bus import ContractPing, consuming, eventually  # noqa: E402
from otel_support import Telemetry  # noqa: E402


async def test_publishing_consuming_and_handlers_are_measured(telemetry: Telemetry) -> None:
    handled: list[DomainEvent] = []
    failing = ContractPing(aggregate_id=uuid4(), n=-1)

    def handler(event: DomainEvent) -> None:
        if event.event_id == failing.event_id:
            raise ValueError("refused")
        handled.append(event)

    async with bus_factory("kafka") as factory, factory() as bus:
        group = {"messaging.kafka.consumer_group": bus.config.consumer_group}
        assert telemetry.gauge("kafka.eventbus.connections.active", group) == 1
        bus.subscribe(ContractPing, handler)
        async with consuming(bus):
            await bus.publish([ContractPing(aggregate_id=uuid4()) for _ in range(2)])
            await bus.publish([failing])
            await eventually(lambda: bus.stats.messages_sent_to_dlq == 1, "the dead letter")
            await eventually(lambda: len(handled) == 2, "the two good pings")
            lags = telemetry.metric_points("kafka.eventbus.consumer.lag")
        topic = bus.config.topic_name
    event = {"messaging.system": "kafka", "messaging.destination": topic}
    assert telemetry.counter_delta(
        "kafka.eventbus.messages.published", {**event, "event.type": "ContractPing"}
    ) == 3
    assert telemetry.histogram_delta("kafka.eventbus.batch.size", {}) == (2, 3.0)
    assert telemetry.histogram_delta(
        "kafka.eventbus.publish.duration", {"messaging.destination": topic}
    )[0] == 2
    assert telemetry.histogram_delta(
        "kafka.eventbus.consume.duration", {"messaging.destination": topic}
    )[0] == 3
    handler_attributes = {"handler.name": handler.__qualname__, "event.type": "ContractPing"}
    assert telemetry.counter_delta("kafka.eventbus.handler.invocations", handler_attributes) == 2
    assert telemetry.counter_delta(
        "kafka.eventbus.handler.errors", {**handler_attributes, "error.type": "ValueError"}
    ) == bus.config.max_retries
    assert telemetry.counter_delta(
        "kafka.eventbus.messages.dlq",
        {"dlq.reason": "max_retries_exceeded", "error.type": "ValueError"},
    ) == 1
    assert telemetry.counter_delta("kafka.eventbus.rebalances", group) >= 1
    assert lags, "the consumed partitions report their lag"
    assert telemetry.gauge("kafka.eventbus.connections.active", group) == 0
