"""Kafka and NATS bus settings and message helpers: all driver-free, no broker needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import fields
from typing import Any
from uuid import uuid4

import pytest

from eventsource.bus import (
    KAFKA_AVAILABLE,
    NATS_AVAILABLE,
    KafkaEventBus,
    KafkaEventBusConfig,
    KafkaEventBusStats,
    KafkaNotAvailableError,
    NATSEventBusConfig,
    NATSEventBusStats,
    NATSNotAvailableError,
)
from eventsource.bus._codec import UndecodableMessageError
from eventsource.bus._kafka_records import (
    dead_letter_headers,
    encode,
    header_list,
    header_map,
    replay_count,
    replay_headers,
)
from eventsource.bus._nats_config import header_text, subject_token
from eventsource.bus._nats_messages import MSG_ID, ORIGINAL_SIZE, decode, fit_dead_letter
from eventsource.bus._nats_messages import dead_letter_headers as nats_dead_letter_headers
from eventsource.bus._nats_messages import encode as nats_encode
from eventsource.bus._nats_messages import message_size as nats_message_size
from eventsource.bus._nats_messages import replay_headers as nats_replay_headers
from eventsource.exceptions import EventBusError
from eventsource.testing.contract.bus import UNKNOWN_EVENT_TYPE, ContractPing

KAFKA_DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "localhost:9092",
    "topic_prefix": "events",
    "consumer_group": "default",
    "acks": "all",
    "compression_type": "gzip",
    "batch_size": 16384,
    "linger_ms": 5,
    "auto_offset_reset": "earliest",
    "session_timeout_ms": 30000,
    "heartbeat_interval_ms": 10000,
    "max_poll_interval_ms": 300000,
    "max_retries": 3,
    "retry_base_delay": 1.0,
    "retry_max_delay": 60.0,
    "retry_jitter": 0.1,
    "enable_dlq": True,
    "dlq_topic_suffix": ".dlq",
    "dlq_consumer_group": None,
    "dlq_max_replay_attempts": 3,
    "security_protocol": "PLAINTEXT",
    "sasl_mechanism": None,
    "sasl_username": None,
    "sasl_password": None,
    "ssl_cafile": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_check_hostname": True,
    "enable_tracing": True,
    "enable_metrics": True,
    "shutdown_timeout": 30.0,
}


def test_kafka_config_defaults_and_names() -> None:
    config = KafkaEventBusConfig()
    for name, value in KAFKA_DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.topic_name == "events.stream"
    assert config.dlq_topic_name == "events.stream.dlq"
    assert config.consumer_name != KafkaEventBusConfig().consumer_name
    assert KafkaEventBusConfig(compression_type=None).compression_type is None


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, "sasl_username"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "sasl_password",
        ),
        ({"ssl_certfile": "cert.pem"}, "go together"),
        ({"ssl_keyfile": "key.pem"}, "go together"),
        ({"acks": "some"}, "acks"),
        ({"compression_type": "brotli"}, "compression_type"),
        ({"auto_offset_reset": "middle"}, "auto_offset_reset"),
        ({"max_retries": 0}, "max_retries"),
        ({"retry_jitter": 2.0}, "retry_jitter"),
        ({"heartbeat_interval_ms": 30000}, "heartbeat_interval_ms"),
    ],
)
def test_kafka_config_rejects_invalid_settings(settings: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        KafkaEventBusConfig(**settings)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_config_accepts_complete_security(mechanism: str) -> None:
    config = KafkaEventBusConfig(
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="user",
        sasl_password="secret",
        ssl_certfile="cert.pem",
        ssl_keyfile="key.pem",
    )
    assert config.uses_ssl


def test_kafka_retry_delay_doubles_with_bounded_jitter() -> None:
    config = KafkaEventBusConfig(retry_base_delay=1.0, retry_max_delay=5.0, retry_jitter=0.1)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        for _ in range(20):
            assert base * 0.9 <= config.retry_delay(attempt) <= base * 1.1
    assert KafkaEventBusConfig(retry_jitter=0.0).retry_delay(2) == 2.0


def test_kafka_stats_dict_has_the_twelve_keys() -> None:
    names = [f.name for f in fields(KafkaEventBusStats)]
    assert len(names) == 12
    assert names[:8] == [
        "events_published",
        "events_consumed",
        "events_processed_success",
        "events_processed_failed",
        "messages_sent_to_dlq",
        "handler_errors",
        "reconnections",
        "rebalance_count",
    ]
    assert names[8:] == ["last_publish_at", "last_consume_at", "last_error_at", "connected_at"]


@pytest.mark.skipif(not KAFKA_AVAILABLE, reason="aiokafka is a dev dependency")
def test_kafka_bus_shape_without_a_broker() -> None:
    bus = KafkaEventBus()
    assert not bus.is_connected
    assert not bus.is_consuming
    assert list(bus.get_stats_dict()) == [f.name for f in fields(KafkaEventBusStats)]
    assert bus.get_stats_dict()["connected_at"] is None


def test_kafka_records_carry_key_headers_and_dlq_fields() -> None:
    event = ContractPing(aggregate_id=uuid4(), n=3, actor_id="ann")
    key, body, headers = encode(event)
    assert key == str(event.aggregate_id).encode()
    assert ContractPing.model_validate_json(body) == event
    assert set(headers) == {
        "event_id",
        "event_type",
        "aggregate_id",
        "aggregate_type",
        "aggregate_version",
        "occurred_at",
        "correlation_id",
        "actor_id",
    }
    assert header_map(header_list(headers)) == headers
    letter = dead_letter_headers(
        headers,
        reason="RuntimeError: boom",
        error_type="RuntimeError",
        error_message="boom",
        retries=3,
        topic="events.stream",
        partition=2,
        offset=41,
        consumer_group="billing",
    )
    assert letter["dlq_original_partition"] == "2"
    assert letter["dlq_original_offset"] == "41"
    assert letter["dlq_retry_count"] == "3"
    replayed = replay_headers(letter)
    assert not [k for k in replayed if k.startswith("dlq_") and k != "dlq_replay_count"]
    assert replay_count(replayed) == 1
    assert replay_count(replay_headers(replayed)) == 2
    assert replay_count({"dlq_replay_count": "x"}) == 0


def test_nats_config_names_and_validation() -> None:
    config = NATSEventBusConfig(subject_prefix="shop.events", consumer_group="bill ing")
    assert config.stream_name == "SHOP_EVENTS"
    assert config.subjects == "shop.events.>"
    assert config.subject_for("Order.Line", "Item Added") == "shop.events.Order_Line.Item_Added"
    assert config.durable_name == "bill_ing"
    assert config.dlq_stream_name == "SHOP_EVENTS_DLQ"
    assert config.dlq_subject == "shop.events_dlq.bill_ing"
    assert config.consumer_name != NATSEventBusConfig().consumer_name
    assert [config.retry_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert NATSEventBusConfig(retry_max_delay=1.5).retry_delay(5) == 1.5
    for bad in (
        {"stream_name": "a.b"},
        {"subject_prefix": "a.*"},
        {"subject_prefix": ""},
        {"storage": "disk"},
        {"batch_size": 0},
        {"max_retries": 0},
        {"ack_wait": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            NATSEventBusConfig(**bad)
    assert [f.name for f in fields(NATSEventBusStats)][-1] == "reconnections"


def test_nats_tokens_and_header_text() -> None:
    assert subject_token("a.b*c>d e/f") == "a_b_c_d_e_f"
    assert subject_token("") == "_"
    assert header_text("line one\r\nline\ttwo ") == "line one line two"


def test_nats_messages_round_trip_and_bad_input() -> None:
    event = ContractPing(aggregate_id=uuid4(), n=7, actor_id="multi\nline")
    body, headers = nats_encode(event)
    assert headers[MSG_ID] == str(event.event_id)
    assert headers["actor_id"] == "multi line"
    assert decode(body, headers, None) == event
    with pytest.raises(UndecodableMessageError, match="UTF-8"):
        decode(b"\xff\xfe", None, None)
    with pytest.raises(UndecodableMessageError, match="no event_type"):
        decode(b"{}", None, None)
    with pytest.raises(UndecodableMessageError, match="unknown event type") as caught:
        decode(b"{}", {"event_type": UNKNOWN_EVENT_TYPE, "event_id": "e1"}, None)
    assert caught.value.event_id == "e1"
    letter = nats_dead_letter_headers(
        headers,
        reason="boom\non two lines",
        error_type="RuntimeError",
        deliveries=3,
        consumer_group="g",
        subject="events.ContractBall.ContractPing",
        sequence=12,
    )
    assert letter["dlq_reason"] == "boom on two lines"
    assert letter[MSG_ID] == "g:12"  # a retried dead letter is stored once per group
    assert letter["event_id"] == str(event.event_id)
    assert set(nats_replay_headers(letter)) == set(headers) - {MSG_ID}


def test_nats_dead_letters_are_cut_to_the_servers_limit() -> None:
    letter = nats_dead_letter_headers(
        {"event_id": "e1", "event_type": "T", "padding": "p" * 500},
        reason="x" * 10_000,
        error_type="ValueError",
        deliveries=1,
        consumer_group="g",
        subject="events.A.T",
        sequence=3,
    )
    assert len(letter["dlq_reason"]) == 4000  # a failure's description is capped
    body = b"b" * 5000
    assert fit_dead_letter(body, letter, 10**6) == (body, letter)  # fits: unchanged
    limit = nats_message_size(body, letter) - 100
    cut_body, cut = fit_dead_letter(body, letter, limit)
    assert nats_message_size(cut_body, cut) == limit
    assert body.startswith(cut_body)
    assert cut[ORIGINAL_SIZE] == "5000"
    assert cut["padding"] == letter["padding"]
    # The original's headers leave no room: only those naming it stay, with the dlq_ ones.
    cut_body, cut = fit_dead_letter(body, letter, nats_message_size(b"", letter))
    assert "padding" not in cut
    assert (cut["event_id"], cut["event_type"], cut[ORIGINAL_SIZE]) == ("e1", "T", "5000")
    with pytest.raises(EventBusError, match="max_payload of 1000"):
        fit_dead_letter(body, letter, 1000)


def test_not_available_errors_name_the_extra() -> None:
    assert issubclass(KafkaNotAvailableError, ImportError)
    assert "eventsource-py[kafka]" in str(KafkaNotAvailableError())
    assert "eventsource-py[nats]" in str(NATSNotAvailableError())
    assert isinstance(NATS_AVAILABLE, bool)


def test_buses_raise_not_available_without_their_drivers() -> None:
    child = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"nats", "aiokafka"}:
                    raise ImportError(name)
                return None

        sys.meta_path.insert(0, Block())
        from eventsource.bus import KAFKA_AVAILABLE, NATS_AVAILABLE, KafkaEventBusConfig
        from eventsource.bus.kafka import KafkaEventBus, KafkaNotAvailableError
        from eventsource.bus.nats import NATSEventBus, NATSEventBusConfig, NATSNotAvailableError
        assert not KAFKA_AVAILABLE and not NATS_AVAILABLE
        KafkaEventBusConfig(), NATSEventBusConfig()
        for bus, error in ((KafkaEventBus, KafkaNotAvailableError),
                           (NATSEventBus, NATSNotAvailableError)):
            try:
                bus()
            except error:
                pass
            else:
                raise AssertionError(bus)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
