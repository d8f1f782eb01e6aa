"""RabbitMQ messages without the driver: routing keys, headers, retries and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from eventsource.bus._codec import PAYLOAD, UndecodableMessageError
from eventsource.bus._dead_letters import (
    ERROR_TYPE,
    REASON,
    RETRY_COUNT,
    TIMESTAMP,
    Failure,
    without_dead_letter_headers,
)
from eventsource.bus._dead_letters import dead_letter_headers as _dead_letter_headers
from eventsource.bus._rabbitmq_config import DLQMessage
from eventsource.events.base import DomainEvent

__all__ = [
    "ORIGINAL_KEY_HEADER",
    "RETRY_HEADER",
    "HasHeaders",
    "dead_letter_headers",
    "dlq_message",
    "forget_deaths_in",
    "get_death_count",
    "get_death_info",
    "get_first_death_exchange",
    "get_first_death_queue",
    "get_first_death_reason",
    "get_original_routing_key",
    "is_from_dlq",
    "message_fields",
    "original_routing_key",
    "replay_headers",
    "retry_count",
    "routing_key",
    "routing_key_for_class",
]

RETRY_HEADER = "x-retry-count"
"""Failed attempts so far: travels with the message, so any consumer of the group can count."""
ORIGINAL_KEY_HEADER = "original_routing_key"
"""The key the message was first published with (a retried message comes back by queue name)."""


def routing_key(event: DomainEvent) -> str:
    return f"{event.aggregate_type}.{event.event_type}"


def routing_key_for_class(event_class: type[DomainEvent]) -> str:
    """The key events of `event_class` are published with (from the field defaults)."""
    fields = event_class.model_fields
    aggregate_type = fields["aggregate_type"].default
    event_type = fields["event_type"].default
    if not isinstance(aggregate_type, str) or not isinstance(event_type, str):
        raise TypeError(f"{event_class.__name__} has no default aggregate_type and event_type")
    return f"{aggregate_type}.{event_type}"


def _text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError as exc:
            raise UndecodableMessageError(f"{what} is not UTF-8 text ({exc})") from exc
    return str(value)


def _plain(value: Any) -> str | None:
    """A header value as text, undecodable bytes replaced (for reading, not for decoding)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    return str(value)


def message_fields(
    headers: Mapping[str, Any] | None, body: bytes, type_property: str | None
) -> dict[str, str]:
    """event_type, event_id and payload as text, for `decode_message`."""
    headers = headers or {}
    fields: dict[str, str] = {}
    event_type = _text(headers.get("event_type"), "event_type header") or type_property
    if event_type:
        fields["event_type"] = event_type
    event_id = _text(headers.get("event_id"), "event_id header")
    if event_id:
        fields["event_id"] = event_id
    payload = _text(body, "message body")
    if payload:
        fields[PAYLOAD] = payload
    return fields


def original_routing_key(current: str | None, headers: Mapping[str, Any] | None) -> str:
    """The key the message was first published with."""
    recorded = _text((headers or {}).get(ORIGINAL_KEY_HEADER), "original_routing_key header")
    return recorded or current or ""


def retry_count(headers: Mapping[str, Any] | None) -> int:
    """The failed attempts recorded on a message (0 when absent or unreadable)."""
    value = (headers or {}).get(RETRY_HEADER, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def dead_letter_headers(
    headers: Mapping[str, Any] | None,
    *,
    reason: str,
    error_type: str,
    retries: int,
    original_key: str,
    queue: str,
    exchange: str,
    consumer_group: str,
) -> dict[str, Any]:
    """The original headers plus where the message came from and why it is dead."""
    failure = Failure(reason, error_type, retries, consumer_group)
    origin = {"queue": queue, "exchange": exchange}
    out: dict[str, Any] = _dead_letter_headers(headers, failure, origin, drop={RETRY_HEADER})
    out[ORIGINAL_KEY_HEADER] = original_key
    return out


def replay_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A dead letter's headers without the dead-letter and retry ones."""
    return without_dead_letter_headers(headers, also={RETRY_HEADER, ORIGINAL_KEY_HEADER})


def dlq_message(
    message_id: str | None, routing_key: str | None, body: bytes, headers: Mapping[str, Any] | None
) -> DLQMessage:
    headers = dict(headers or {})

    def text(name: str) -> str | None:
        return _plain(headers.get(name))

    return DLQMessage(
        message_id=message_id,
        routing_key=routing_key,
        body=body,
        headers=headers,
        event_type=text("event_type"),
        dlq_reason=text(REASON),
        dlq_error_type=text(ERROR_TYPE),
        dlq_retry_count=retry_count({RETRY_HEADER: headers.get(RETRY_COUNT, 0)}),
        dlq_timestamp=text(TIMESTAMP),
        original_routing_key=text("original_routing_key"),
    )


# -- death records ------------------------------------------------------------------------------
#
# RabbitMQ records every dead-lettering in the `x-death` header (one entry per queue and reason,
# most recent first, each with a `count`) and the first one in `x-first-death-queue`, `-reason`
# and `-exchange`. This bus moves a message to its DLQ itself, to attach the reason, so such a
# letter carries the bus's `dlq_*` headers instead: the readers below count that as one more
# dead-lettering, by rejection, in the group's queue. The back-off through the retry queue is
# no death: the bus drops RabbitMQ's record of it before republishing (`forget_deaths_in`).

DEATHS_HEADER = "x-death"
_BUS_DEATH_REASON = "rejected"


class HasHeaders(Protocol):
    """A message as the death readers see it: aio-pika's, or a `DLQMessage`."""

    @property
    def headers(self) -> Mapping[str, Any] | None: ...


def _headers(message: HasHeaders | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    return message.headers or {}


def _deaths(headers: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    records = headers.get(DEATHS_HEADER)
    if not isinstance(records, list):
        return []
    return [record for record in records if isinstance(record, Mapping)]


def _dead_lettered_by_bus(headers: Mapping[str, Any]) -> bool:
    return REASON in headers


def forget_deaths_in(headers: Mapping[str, Any], queue: str) -> dict[str, Any]:
    """`headers` without RabbitMQ's record of `queue` dead-lettering the message."""
    out = dict(headers)
    kept = [record for record in _deaths(out) if _plain(record.get("queue")) != queue]
    if kept:
        out[DEATHS_HEADER] = kept
    else:
        out.pop(DEATHS_HEADER, None)
    for edge in ("first", "last"):
        if _plain(out.get(f"x-{edge}-death-queue")) == queue:
            for part in ("queue", "reason", "exchange"):
                out.pop(f"x-{edge}-death-{part}", None)
    return out


def get_death_count(message: HasHeaders | Mapping[str, Any]) -> int:
    """How often the message was dead-lettered (0: never)."""
    headers = _headers(message)
    counts = (record.get("count", 0) for record in _deaths(headers))
    total = sum(count for count in counts if isinstance(count, int))
    return total + (1 if _dead_lettered_by_bus(headers) else 0)


def is_from_dlq(message: HasHeaders | Mapping[str, Any]) -> bool:
    """Whether the message was ever dead-lettered."""
    headers = _headers(message)
    return bool(_deaths(headers)) or _dead_lettered_by_bus(headers)


def _first_death(headers: Mapping[str, Any], part: str, by_bus: str | None) -> str | None:
    recorded = headers.get(f"x-first-death-{part}")
    if recorded is None and _dead_lettered_by_bus(headers):
        return by_bus
    return _plain(recorded)


def get_first_death_queue(message: HasHeaders | Mapping[str, Any]) -> str | None:
    """The queue the message was first dead-lettered from; None if it never was."""
    headers = _headers(message)
    return _first_death(headers, "queue", _plain(headers.get("dlq_original_queue")))


def get_first_death_reason(message: HasHeaders | Mapping[str, Any]) -> str | None:
    """Why it was first dead-lettered (`rejected`, `expired`, `maxlen`, ...); None if never."""
    return _first_death(_headers(message), "reason", _BUS_DEATH_REASON)


def get_first_death_exchange(message: HasHeaders | Mapping[str, Any]) -> str | None:
    """The exchange it had come through when first dead-lettered; None if it never was."""
    headers = _headers(message)
    return _first_death(headers, "exchange", _plain(headers.get("dlq_original_exchange")))


def get_original_routing_key(message: HasHeaders | Mapping[str, Any]) -> str | None:
    """The key a dead-lettered message was published with; None if it never was."""
    headers = _headers(message)
    if not is_from_dlq(headers):
        return None
    recorded = _plain(headers.get(ORIGINAL_KEY_HEADER))
    if recorded:
        return recorded
    for record in _deaths(headers)[:1]:
        keys = record.get("routing-keys")
        if isinstance(keys, list) and keys:
            return _plain(keys[0])
    return None


def get_death_info(message: HasHeaders | Mapping[str, Any]) -> dict[str, Any]:
    """All of the above in one dict, plus the raw `x-death` records (`x_death`)."""
    headers = _headers(message)
    return {
        "is_dead_lettered": is_from_dlq(headers),
        "death_count": get_death_count(headers),
        "first_death_queue": get_first_death_queue(headers),
        "first_death_reason": get_first_death_reason(headers),
        "first_death_exchange": get_first_death_exchange(headers),
        "original_routing_key": get_original_routing_key(headers),
        "x_death": headers.get(DEATHS_HEADER),
    }
