"""Every broker writes dead letters in one format (`bus/_dead_letters.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from eventsource.bus._dead_letters import (
    Failure,
    dead_letter_headers,
    redis_fields,
    without_dead_letter_headers,
)
from eventsource.bus._kafka_records import dead_letter_headers as kafka_headers
from eventsource.bus._nats_messages import MSG_ID
from eventsource.bus._nats_messages import dead_letter_headers as nats_headers
from eventsource.bus._rabbitmq_messages import RETRY_HEADER, dlq_message, replay_headers
from eventsource.bus._rabbitmq_messages import dead_letter_headers as rabbitmq_headers
from eventsource.bus._redis_entries import DeadLetter, dead_letter_fields, replay_fields

COMMON = {
    "dlq_reason",
    "dlq_error_type",
    "dlq_error_message",
    "dlq_retry_count",
    "dlq_timestamp",
    "dlq_consumer_group",
}
ORIGINAL = {"event_id": "e1", "event_type": "Placed"}


def _dlq(headers: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in headers.items() if k.startswith("dlq_")}


def test_every_broker_writes_the_same_fields() -> None:
    kafka = kafka_headers(
        ORIGINAL, reason="ValueError: bad", error_type="ValueError", error_message="bad",
        retries=3, topic="t", partition=1, offset=9, consumer_group="g",
    )  # fmt: skip
    nats = nats_headers(
        ORIGINAL, reason="ValueError: bad", error_type="ValueError", deliveries=3,
        consumer_group="g", subject="events.A.Placed", sequence=4,
    )  # fmt: skip
    rabbit = rabbitmq_headers(
        {**ORIGINAL, RETRY_HEADER: 2}, reason="ValueError: bad", error_type="ValueError",
        retries=3, original_key="A.Placed", queue="q", exchange="x", consumer_group="g",
    )  # fmt: skip
    for letter in (kafka, nats, rabbit):
        assert {k for k in letter if k.startswith("dlq_") and "original" not in k} == COMMON
        assert letter["dlq_reason"] == "ValueError: bad"
        assert letter["dlq_error_message"] == "bad"
        assert letter["dlq_retry_count"] == "3"
        assert letter["dlq_consumer_group"] == "g"
        assert datetime.fromisoformat(str(letter["dlq_timestamp"])).tzinfo is not None
        assert {k: letter[k] for k in ORIGINAL} == ORIGINAL
    assert (kafka["dlq_original_topic"], kafka["dlq_original_offset"]) == ("t", "9")
    assert (nats["dlq_original_subject"], nats[MSG_ID]) == ("events.A.Placed", "g:4")
    assert (rabbit["dlq_original_queue"], rabbit["original_routing_key"]) == ("q", "A.Placed")
    assert RETRY_HEADER not in rabbit
    assert replay_headers(rabbit) == ORIGINAL
    read = dlq_message("m1", "q", b"{}", rabbit)
    assert (read.dlq_reason, read.dlq_error_type, read.dlq_retry_count) == (
        "ValueError: bad",
        "ValueError",
        3,
    )


def test_redis_names_its_fields_as_the_api_fixes() -> None:
    failure = Failure("RuntimeError: not yet", "RuntimeError", 2, "g")
    fields = redis_fields(failure, "1-0")
    assert fields["original_message_id"] == "1-0"
    assert fields["retry_count"] == "2"
    assert float(fields["dlq_timestamp"]) > 0
    assert fields["dlq_reason"] == "RuntimeError: not yet"
    assert "dlq_retry_count" not in fields
    original = {b"event_id": b"e1", b"payload": b"{}"}
    entry = dead_letter_fields(DeadLetter("1-0", original, failure), None)
    stored = {k.encode() if isinstance(k, str) else k: v for k, v in entry.items()}
    assert replay_fields(stored) == original


def test_one_builder_and_one_stripper() -> None:
    failure = Failure("undecodable", "UndecodableMessageError", 0, "g", error_message="x")
    letter = dead_letter_headers({"a": 1, "drop": 2}, failure, {"where": 5}, drop={"drop"})
    assert letter["dlq_original_where"] == "5"
    assert letter["dlq_error_message"] == "x"
    assert without_dead_letter_headers(letter) == {"a": 1}
    assert without_dead_letter_headers(letter, also={"a"}) == {}
    assert _dlq(letter)["dlq_reason"] == "undecodable"
