"""`KafkaEventBusMetrics`: the Kafka bus's OpenTelemetry instruments, named `kafka.eventbus.*`
with the attribute names of eventsource-py 0.2.0, so its dashboards and alerts keep working.

Driver-free. The bus records through `kafka_metrics()` only when its `enable_metrics` is on and
a meter provider records (`metrics_live()`); otherwise nothing is built or measured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from eventsource.observability.metrics import get_meter

__all__ = ["METER_NAME", "KafkaEventBusMetrics", "kafka_metrics"]

METER_NAME = "eventsource.bus.kafka"
CONNECTIONS_ACTIVE = "kafka.eventbus.connections.active"
CONSUMER_LAG = "kafka.eventbus.consumer.lag"

_SYSTEM = {"messaging.system": "kafka"}


def _ms(seconds: float) -> float:
    return seconds * 1000.0


# attribute, instrument name after `kafka.eventbus.`, unit, description
_COUNTERS = (
    ("messages_published", "messages.published", "messages", "Messages published"),
    ("messages_consumed", "messages.consumed", "messages", "Messages consumed"),
    ("handler_invocations", "handler.invocations", "invocations", "Handler calls that succeeded"),
    ("handler_errors", "handler.errors", "errors", "Handler calls that raised"),
    ("dlq_messages", "messages.dlq", "messages", "Messages dead-lettered"),
    ("connection_errors", "connection.errors", "errors", "Failed connects, consumer failures"),
    ("reconnections", "reconnections", "reconnections", "Consumer restarts"),
    ("rebalances", "rebalances", "rebalances", "Group rebalances"),
    ("publish_errors", "publish.errors", "errors", "Events not published"),
)
_HISTOGRAMS = (
    ("publish_duration", "publish.duration", "ms", "One publish() call"),
    ("consume_duration", "consume.duration", "ms", "One consumed message"),
    ("handler_duration", "handler.duration", "ms", "One handler call"),
    ("batch_size", "batch.size", "messages", "Events per publish() call"),
)


class KafkaEventBusMetrics:
    """The counters and histograms (durations in ms) of a `KafkaEventBus`, made on `meter`.
    The two gauges, `kafka.eventbus.connections.active` and `kafka.eventbus.consumer.lag`, are
    observed per bus instead (their values are read from it when the SDK collects)."""

    messages_published: Any
    messages_consumed: Any
    handler_invocations: Any
    handler_errors: Any
    dlq_messages: Any
    connection_errors: Any
    reconnections: Any
    rebalances: Any
    publish_errors: Any
    publish_duration: Any
    consume_duration: Any
    handler_duration: Any
    batch_size: Any

    def __init__(self, meter: Any) -> None:
        for table, create in (
            (_COUNTERS, meter.create_counter),
            (_HISTOGRAMS, meter.create_histogram),
        ):
            for attribute, name, unit, description in table:
                instrument = create(f"kafka.eventbus.{name}", unit=unit, description=description)
                setattr(self, attribute, instrument)

    def published(self, topic: str, event_types: Sequence[str], seconds: float) -> None:
        for event_type, count in Counter(event_types).items():
            self.messages_published.add(
                count, {**_SYSTEM, "messaging.destination": topic, "event.type": event_type}
            )
        self.publish_duration.record(_ms(seconds), {"messaging.destination": topic})
        self.batch_size.record(len(event_types))

    def publish_failed(self, topic: str, event_types: Sequence[str], error: BaseException) -> None:
        for event_type, count in Counter(event_types).items():
            self.publish_errors.add(
                count,
                {
                    **_SYSTEM,
                    "messaging.destination": topic,
                    "event.type": event_type,
                    "error.type": type(error).__name__,
                },
            )

    def consumed(self, topic: str, partition: int, event_type: str, seconds: float) -> None:
        self.messages_consumed.add(
            1,
            {
                **_SYSTEM,
                "messaging.destination": topic,
                "messaging.kafka.partition": partition,
                "event.type": event_type,
            },
        )
        self.consume_duration.record(_ms(seconds), {"messaging.destination": topic})

    def handled(
        self, handler: str, event_type: str, seconds: float, error: BaseException | None
    ) -> None:
        attributes = {"handler.name": handler, "event.type": event_type}
        if error is None:
            self.handler_invocations.add(1, attributes)
        else:
            self.handler_errors.add(1, {**attributes, "error.type": type(error).__name__})
        self.handler_duration.record(_ms(seconds), attributes)

    def dead_lettered(self, reason: str, error_type: str) -> None:
        """`reason`: a word (`max_retries_exceeded`, `undecodable`), never free text."""
        self.dlq_messages.add(1, {"dlq.reason": reason, "error.type": error_type})

    def connection_failed(self, error: BaseException) -> None:
        self.connection_errors.add(1, {"error.type": type(error).__name__})

    def reconnected(self) -> None:
        self.reconnections.add(1)

    def rebalanced(self, consumer_group: str) -> None:
        self.rebalances.add(1, {"messaging.kafka.consumer_group": consumer_group})


_instruments: list[KafkaEventBusMetrics] = []


def kafka_metrics() -> KafkaEventBusMetrics:
    """The process's one set of instruments, made on first use (every bus shares them)."""
    if not _instruments:
        _instruments.append(KafkaEventBusMetrics(get_meter(METER_NAME)))
    return _instruments[0]
