"""Issue 20, bus groups 18-21: code written for eventsource-py 0.2.0 finds the bus names its
reference documents at the documented module path, and each is the working object: a class with
its documented members, a method that runs as documented, an exception carrying its fields.

Data, as in test_upstream_compat.py (whose helpers this uses); the behaviour is tested on the
real brokers where it is implemented (see docs/compatibility.md, "Distributed buses" for the map).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_upstream_compat import _has, _ids, _imported

from extras import require_extra

RABBITMQ = "eventsource.bus.rabbitmq"
KAFKA = "eventsource.bus.kafka"
REDIS = "eventsource.bus.redis"

DEATH_HELPERS = (
    "get_death_count", "is_from_dlq", "get_first_death_queue", "get_first_death_reason",
    "get_first_death_exchange", "get_death_info", "get_original_routing_key",
)
BUS = (
    "connect", "disconnect", "publish", "subscribe", "start_consuming", "stop_consuming",
    "shutdown", "get_stats_dict", "is_connected", "is_consuming", "config", "stats",
)

CLASSES: dict[tuple[str, str], tuple[str, ...]] = {
    # Group 18 and 21: Redis.
    (REDIS, "RedisEventBus"): (*BUS, "get_stream_info", "recover_pending_messages"),
    (REDIS, "RedisEventBusConfig"): ("get_retry_key", "stream_name", "dlq_stream_name"),
    # Group 19: RabbitMQ.
    (RABBITMQ, "RabbitMQEventBus"): (
        *BUS, *DEATH_HELPERS, "health_check", "get_queue_info", "publish_batch", "is_shutdown",
        "get_dlq_messages", "replay_dlq_message", "purge_dlq",
    ),
    (RABBITMQ, "RabbitMQEventBusConfig"): ("exchange_type", "queue_name", "dlq_queue_name"),
    (RABBITMQ, "HealthCheckResult"): (
        "healthy", "connection_status", "channel_status", "queue_status", "dlq_status", "error",
        "details",
    ),
    (RABBITMQ, "ShutdownError"): (),
    (RABBITMQ, "BatchPublishError"): (),
    # Group 20: Kafka.
    (KAFKA, "KafkaEventBus"): (*BUS, "get_handlers_for_event", "get_topic_info"),
    (KAFKA, "KafkaEventBusConfig"): (
        "get_producer_config", "get_consumer_config", "create_ssl_context",
        "get_sanitized_config", "topic_name", "dlq_topic_name",
    ),
    (KAFKA, "KafkaEventBusStats"): ("get_stats_dict", "events_published", "rebalance_count"),
    (KAFKA, "KafkaEventBusMetrics"): ("published", "consumed", "handled", "dead_lettered"),
}

# (module, class, member): (constructor keyword arguments, or None to call it on the class;
# the call's arguments; what it must return). Nothing here needs a broker or a driver.
X_DEATH = {
    "x-death": [{"count": 2, "queue": "q", "reason": "expired", "routing-keys": ["A.B"]}],
    "x-first-death-queue": "q",
    "x-first-death-reason": "expired",
    "x-first-death-exchange": "ex",
}
Call = tuple[dict[str, Any] | None, tuple[Any, ...], Callable[[Any], bool]]
CALLS: dict[tuple[str, str, str], Call] = {
    (RABBITMQ, "RabbitMQEventBus", "get_death_count"): (None, (X_DEATH,), lambda n: n == 2),
    (RABBITMQ, "RabbitMQEventBus", "is_from_dlq"): (None, ({},), lambda b: b is False),
    (RABBITMQ, "RabbitMQEventBus", "get_first_death_queue"): (None, (X_DEATH,), "q".__eq__),
    (RABBITMQ, "RabbitMQEventBus", "get_first_death_reason"): (
        None, (X_DEATH,), "expired".__eq__,
    ),
    (RABBITMQ, "RabbitMQEventBus", "get_first_death_exchange"): (None, (X_DEATH,), "ex".__eq__),
    (RABBITMQ, "RabbitMQEventBus", "get_original_routing_key"): (None, (X_DEATH,), "A.B".__eq__),
    (RABBITMQ, "RabbitMQEventBus", "get_death_info"): (
        None, (X_DEATH,), lambda info: info["is_dead_lettered"] and info["death_count"] == 2,
    ),
    (RABBITMQ, "RabbitMQEventBusConfig", "get_effective_routing_key"): (
        {"exchange_type": "TOPIC"}, (), "#".__eq__,
    ),
    (REDIS, "RedisEventBusConfig", "get_retry_key"): (
        {"stream_prefix": "shop"}, ("1-0",), lambda key: key.startswith("shop:retry:"),
    ),
    (KAFKA, "KafkaEventBusConfig", "get_producer_config"): (
        {"bootstrap_servers": "k:9092"}, (), lambda c: c["bootstrap_servers"] == "k:9092",
    ),
    (KAFKA, "KafkaEventBusConfig", "get_consumer_config"): (
        {"consumer_group": "g"}, (), lambda c: c["group_id"] == "g",
    ),
    (KAFKA, "KafkaEventBusConfig", "create_ssl_context"): ({}, (), lambda c: c is None),
    (KAFKA, "KafkaEventBusConfig", "get_sanitized_config"): (
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u",
         "sasl_password": "p"},
        (),
        lambda c: c["sasl_password"] == "***",
    ),
    (KAFKA, "KafkaEventBusStats", "get_stats_dict"): (
        {"events_published": 4}, (), lambda d: d["events_published"] == 4 and len(d) == 12,
    ),
}


@pytest.mark.parametrize(("path", "members"), CLASSES.items(), ids=_ids(CLASSES))
def test_class_has_its_documented_members(path: tuple[str, str], members: tuple[str, ...]) -> None:
    cls = _imported(*path)
    assert isinstance(cls, type)
    assert [m for m in members if not _has(cls, m)] == []


@pytest.mark.parametrize(
    ("path", "call"), CALLS.items(), ids=[f"{m}:{c}.{n}" for m, c, n in CALLS]
)
def test_method_runs_as_documented(path: tuple[str, str, str], call: Call) -> None:
    module, name, member = path
    settings, args, check = call
    cls = _imported(module, name)
    receiver = cls if settings is None else cls(**settings)
    assert check(getattr(receiver, member)(*args))


def test_the_exceptions_carry_what_0_2_0_gave_them() -> None:
    shutdown = _imported(RABBITMQ, "ShutdownError")
    batch = _imported(RABBITMQ, "BatchPublishError")
    assert str(shutdown()) == "Event bus has been shut down"
    assert issubclass(shutdown, Exception)
    assert issubclass(batch, Exception)
    cause = OSError("down")
    results = {"total": 3, "published": 1, "failed": 2, "chunks": 2}
    error = batch("2 failed", results=results, errors=[cause])
    assert (str(error), error.results, error.errors) == ("2 failed", results, [cause])
    empty = batch("none")
    assert (empty.results, empty.errors) == (
        {"total": 0, "published": 0, "failed": 0, "chunks": 0},
        [],
    )


def test_the_metrics_class_makes_its_documented_instruments() -> None:
    require_extra("opentelemetry")
    from opentelemetry.metrics import NoOpMeter

    meter = NoOpMeter("tests.compat")
    metrics = _imported(KAFKA, "KafkaEventBusMetrics")(meter)
    instruments = (
        "messages_published", "messages_consumed", "handler_invocations", "handler_errors",
        "dlq_messages", "connection_errors", "reconnections", "rebalances", "publish_errors",
        "publish_duration", "consume_duration", "handler_duration", "batch_size",
    )
    assert [name for name in instruments if not hasattr(metrics, name)] == []
