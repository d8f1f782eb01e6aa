"""Kafka records without the driver: event headers out, dead-letter and replay headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventsource.bus._codec import event_headers
from eventsource.bus._dead_letters import Failure, without_dead_letter_headers
from eventsource.bus._dead_letters import dead_letter_headers as _dead_letter_headers
from eventsource.events.base import DomainEvent
from eventsource.stores.codec import encode_payload

__all__ = [
    "REPLAY_COUNT",
    "dead_letter_headers",
    "encode",
    "header_list",
    "header_map",
    "replay_count",
    "replay_headers",
]

REPLAY_COUNT = "dlq_replay_count"
"""Kept through replays, so a dead letter cannot be replayed without end."""


def encode(
    event: DomainEvent, trace: Mapping[str, str] | None = None
) -> tuple[bytes, bytes, dict[str, str]]:
    """Key (the aggregate id: one aggregate stays on one partition, in order), body, headers
    (with the publisher's trace context, when given); `SerializationError` before anything is
    sent."""
    headers = event_headers(event, trace)
    return str(event.aggregate_id).encode(), encode_payload(event).encode(), headers


def header_list(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(key, value.encode()) for key, value in headers.items()]


def header_map(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {key: value.decode(errors="replace") for key, value in headers or ()}


def dead_letter_headers(
    headers: Mapping[str, str],
    *,
    reason: str,
    error_type: str,
    error_message: str,
    retries: int,
    topic: str,
    partition: int,
    offset: int,
    consumer_group: str,
) -> dict[str, str]:
    """The original headers plus the `dlq_*` ones every broker's dead letters carry."""
    failure = Failure(reason, error_type, retries, consumer_group, error_message)
    origin = {"topic": topic, "partition": partition, "offset": offset}
    return _dead_letter_headers(headers, failure, origin)


def replay_count(headers: Mapping[str, str]) -> int:
    try:
        return int(headers.get(REPLAY_COUNT, "0"))
    except ValueError:
        return 0


def replay_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The event headers without the DLQ ones, counting this replay."""
    out = without_dead_letter_headers(headers)
    out[REPLAY_COUNT] = str(replay_count(headers) + 1)
    return out
