"""Kafka settings as aiokafka arguments, TLS contexts, redaction, security warnings, the stats
dict, handler lookup by name and the OpenTelemetry instruments (issue 20, group 20): all without
a broker (none can be installed here; the broker path is in tests/contract/test_kafka_metrics.py).
"""

from __future__ import annotations

import logging
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from eventsource.bus.kafka import (
    KafkaEventBus,
    KafkaEventBusConfig,
    KafkaEventBusMetrics,
    KafkaEventBusStats,
)
from eventsource.testing.contract.bus import ContractPing, ContractPong
from extras import require_extra

SASL: dict[str, Any] = {
    "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "app", "sasl_password": "s3cret"
}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM), made with the openssl tool."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "ca.pem", folder / "ca.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=kafka.test", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_producer_and_consumer_configs_name_the_settings() -> None:
    config = KafkaEventBusConfig(
        bootstrap_servers="b1:9092,b2:9092", consumer_group="billing", consumer_name="w1",
        acks="1", compression_type="lz4", batch_size=1024, linger_ms=7,
        auto_offset_reset="latest", session_timeout_ms=9000, heartbeat_interval_ms=3000,
        max_poll_interval_ms=60000,
    )
    assert config.get_producer_config() == {
        "bootstrap_servers": "b1:9092,b2:9092",
        "client_id": "eventsource-w1",
        "acks": 1,
        "compression_type": "lz4",
        "max_batch_size": 1024,
        "linger_ms": 7,
        "security_protocol": "PLAINTEXT",
    }
    assert config.get_consumer_config() == {
        "bootstrap_servers": "b1:9092,b2:9092",
        "group_id": "billing",
        "client_id": "eventsource-w1",
        "enable_auto_commit": False,
        "auto_offset_reset": "latest",
        "session_timeout_ms": 9000,
        "heartbeat_interval_ms": 3000,
        "max_poll_interval_ms": 60000,
        "security_protocol": "PLAINTEXT",
    }
    assert KafkaEventBusConfig().get_producer_config()["acks"] == "all"


async def test_the_configs_are_accepted_by_aiokafka_as_they_are(
    certificate: tuple[Path, Path],
) -> None:
    require_extra("aiokafka")
    import aiokafka

    config = KafkaEventBusConfig(
        security_protocol="SASL_SSL", ssl_cafile=str(certificate[0]), **SASL
    )
    producer_config = config.get_producer_config()
    assert isinstance(producer_config["ssl_context"], ssl.SSLContext)
    assert (producer_config["sasl_plain_username"], producer_config["sasl_plain_password"]) == (
        "app",
        "s3cret",
    )
    producer = aiokafka.AIOKafkaProducer(**producer_config)
    consumer = aiokafka.AIOKafkaConsumer("events.stream", **config.get_consumer_config())
    await producer.stop()
    await consumer.stop()


def test_ssl_context_verifies_the_broker_and_presents_the_client_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    assert KafkaEventBusConfig().create_ssl_context() is None
    assert KafkaEventBusConfig(security_protocol="SASL_PLAINTEXT", **SASL).create_ssl_context() is (
        None
    )
    context = KafkaEventBusConfig(
        security_protocol="SSL", ssl_cafile=str(cert), ssl_certfile=str(cert), ssl_keyfile=str(key)
    ).create_ssl_context()
    assert context is not None
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "kafka.test"),),)]
    relaxed = KafkaEventBusConfig(
        security_protocol="SSL", ssl_cafile=str(cert), ssl_check_hostname=False
    ).create_ssl_context()
    assert relaxed is not None
    assert (relaxed.verify_mode, relaxed.check_hostname) == (ssl.CERT_REQUIRED, False)
    missing = KafkaEventBusConfig(security_protocol="SSL", ssl_cafile="/nonexistent/ca.pem")
    with pytest.raises(FileNotFoundError):
        missing.create_ssl_context()


def test_sanitized_config_hides_the_password_and_the_key_file() -> None:
    config = KafkaEventBusConfig(
        security_protocol="SASL_SSL", ssl_certfile="/tls/client.pem", ssl_keyfile="/tls/client.key",
        **SASL,
    )
    sanitized = config.get_sanitized_config()
    assert (sanitized["sasl_password"], sanitized["ssl_keyfile"]) == ("***", "***")
    assert (sanitized["sasl_username"], sanitized["ssl_certfile"]) == ("app", "/tls/client.pem")
    assert sanitized["bootstrap_servers"] == "localhost:9092"
    assert "s3cret" not in repr(sanitized)
    assert config.sasl_password == "s3cret", "the config itself is untouched"
    plain = KafkaEventBusConfig().get_sanitized_config()
    assert (plain["sasl_password"], plain["ssl_keyfile"]) == (None, None)
    assert set(plain) >= {
        "bootstrap_servers", "topic_prefix", "consumer_group", "consumer_name",
        "security_protocol", "sasl_mechanism", "sasl_username", "ssl_cafile",
        "ssl_check_hostname", "enable_dlq", "enable_tracing", "enable_metrics",
    }


@pytest.mark.parametrize(
    ("settings", "warning"),
    [
        ({}, "PLAINTEXT"),
        ({"security_protocol": "SASL_PLAINTEXT", **SASL}, "unencrypted"),
        ({"security_protocol": "SSL", "ssl_check_hostname": False}, "ssl_check_hostname"),
    ],
)
def test_insecure_settings_log_a_warning(
    settings: dict[str, Any], warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="eventsource.bus.kafka"):
        KafkaEventBusConfig(**settings)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert warning in caplog.records[0].getMessage()


def test_secure_settings_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="eventsource.bus.kafka"):
        KafkaEventBusConfig(security_protocol="SASL_SSL", **SASL)
    assert caplog.records == []


def test_stats_give_their_own_dict() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    stats = KafkaEventBusStats(events_published=3, rebalance_count=1, connected_at=at)
    assert stats.get_stats_dict() == {
        "events_published": 3,
        "events_consumed": 0,
        "events_processed_success": 0,
        "events_processed_failed": 0,
        "messages_sent_to_dlq": 0,
        "handler_errors": 0,
        "reconnections": 0,
        "rebalance_count": 1,
        "last_publish_at": None,
        "last_consume_at": None,
        "last_error_at": None,
        "connected_at": "2025-01-02T03:04:05+00:00",
    }


async def test_handlers_for_an_event_type_name() -> None:
    require_extra("aiokafka")
    bus = KafkaEventBus(KafkaEventBusConfig(enable_tracing=False))
    calls: list[str] = []

    class Projection:
        async def handle(self, event: Any) -> None:
            calls.append("projection")

    def audit(event: Any) -> None:
        calls.append("audit")

    projection = Projection()
    bus.subscribe_to_all_events(audit)
    bus.subscribe(ContractPing, projection)
    bus.subscribe(ContractPong, audit)
    bound = bus.get_handlers_for_event("ContractPing")
    assert [b.original for b in bound] == [projection, audit], "the class's first, then wildcard"
    assert [b.name for b in bound] == [
        "test_handlers_for_an_event_type_name.<locals>.Projection",
        "test_handlers_for_an_event_type_name.<locals>.audit",
    ]
    for handler in bound:
        await handler.handle(ContractPing(aggregate_id=uuid4()))
    assert calls == ["projection", "audit"]
    assert [b.original for b in bus.get_handlers_for_event("NoSuchEvent")] == [audit]


def test_metrics_instruments_record_under_the_documented_names(telemetry: Any) -> None:
    meter = telemetry.meter_provider.get_meter("tests.kafka.instruments")
    metrics = KafkaEventBusMetrics(meter)
    metrics.published("t.stream", ["A", "A", "B"], 0.002)
    metrics.publish_failed("t.stream", ["A"], TimeoutError())
    metrics.consumed("t.stream", 2, "A", 0.001)
    metrics.handled("proj", "A", 0.001, None)
    metrics.handled("proj", "A", 0.001, ValueError())
    metrics.dead_lettered("max_retries_exceeded", "ValueError")
    metrics.connection_failed(OSError())
    metrics.reconnected()
    metrics.rebalanced("billing")
    topic = {"messaging.system": "kafka", "messaging.destination": "t.stream"}
    counters = {
        "kafka.eventbus.messages.published": ({**topic, "event.type": "A"}, 2),
        "kafka.eventbus.publish.errors": (
            {**topic, "event.type": "A", "error.type": "TimeoutError"}, 1
        ),
        "kafka.eventbus.messages.consumed": (
            {**topic, "messaging.kafka.partition": 2, "event.type": "A"}, 1
        ),
        "kafka.eventbus.handler.invocations": ({"handler.name": "proj", "event.type": "A"}, 1),
        "kafka.eventbus.handler.errors": (
            {"handler.name": "proj", "event.type": "A", "error.type": "ValueError"}, 1
        ),
        "kafka.eventbus.messages.dlq": (
            {"dlq.reason": "max_retries_exceeded", "error.type": "ValueError"}, 1
        ),
        "kafka.eventbus.connection.errors": ({"error.type": "OSError"}, 1),
        "kafka.eventbus.reconnections": ({}, 1),
        "kafka.eventbus.rebalances": ({"messaging.kafka.consumer_group": "billing"}, 1),
    }
    for name, (attributes, value) in counters.items():
        assert telemetry.counter_delta(name, attributes) == value, name
    assert telemetry.counter_delta(
        "kafka.eventbus.messages.published", {**topic, "event.type": "B"}
    ) == 1
    destination = {"messaging.destination": "t.stream"}
    assert telemetry.histogram_delta("kafka.eventbus.publish.duration", destination) == (1, 2.0)
    assert telemetry.histogram_delta("kafka.eventbus.consume.duration", destination)[0] == 1
    handler = {"handler.name": "proj", "event.type": "A"}
    assert telemetry.histogram_delta("kafka.eventbus.handler.duration", handler)[0] == 2
    assert telemetry.histogram_delta("kafka.eventbus.batch.size", {}) == (1, 3.0)


def test_a_bus_reports_its_connection_through_the_gauge(telemetry: Any) -> None:
    require_extra("aiokafka")
    group = f"gauge-{uuid4().hex[:8]}"
    bus = KafkaEventBus(KafkaEventBusConfig(consumer_group=group, enable_tracing=False))
    attributes = {"messaging.kafka.consumer_group": group}
    assert telemetry.gauge("kafka.eventbus.connections.active", attributes) == 0
    silent = f"silent-{uuid4().hex[:8]}"
    KafkaEventBus(KafkaEventBusConfig(consumer_group=silent, enable_metrics=False))
    assert telemetry.gauge(
        "kafka.eventbus.connections.active", {"messaging.kafka.consumer_group": silent}
    ) is None
    assert not bus.is_connected
