"""RabbitMQ messages without the driver: routing keys, headers, retries and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from eventsource.bus._codec import PAYLOAD, UndecodableMessageError
from eventsource.bus._rabbitmq_config import DLQMessage
from eventsource.events.base import DomainEvent

__all__ = [
    "DLQ_HEADERS",
    "ORIGINAL_KEY_HEADER",
    "RETRY_HEADER",
    "dead_letter_headers",
    "dlq_message",
    "message_fields",
    "original_routing_key",
    "retry_count",
    "routing_key",
    "routing_key_for_class",
]

RETRY_HEADER = "x-retry-count"
"""Failed attempts so far: travels with the message, so any consumer of the group can count."""
ORIGINAL_KEY_HEADER = "original_routing_key"
"""The key the message was first published with (a retried message comes back by queue name)."""

DLQ_HEADERS = frozenset(
    {
        RETRY_HEADER,
        "dlq_reason",
        "dlq_error_type",
        "dlq_error_message",
        "dlq_retry_count",
        "dlq_timestamp",
        "dlq_original_queue",
        "dlq_consumer_group",
        ORIGINAL_KEY_HEADER,
    }
)


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
    consumer_group: str,
) -> dict[str, Any]:
    """The original headers plus where the message came from and why it is dead."""
    out = {k: v for k, v in (headers or {}).items() if k != RETRY_HEADER}
    out.update(
        dlq_reason=reason,
        dlq_error_type=error_type,
        dlq_error_message=reason.partition(": ")[2] or reason,
        dlq_retry_count=retries,
        dlq_timestamp=datetime.now(UTC).isoformat(),
        dlq_original_queue=queue,
        dlq_consumer_group=consumer_group,
        original_routing_key=original_key,
    )
    return out


def dlq_message(
    message_id: str | None, routing_key: str | None, body: bytes, headers: Mapping[str, Any] | None
) -> DLQMessage:
    headers = dict(headers or {})

    def text(name: str) -> str | None:
        value = headers.get(name)
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode(errors="replace")
        return None if value is None else str(value)

    return DLQMessage(
        message_id=message_id,
        routing_key=routing_key,
        body=body,
        headers=headers,
        event_type=text("event_type"),
        dlq_reason=text("dlq_reason"),
        dlq_error_type=text("dlq_error_type"),
        dlq_retry_count=retry_count({RETRY_HEADER: headers.get("dlq_retry_count", 0)}),
        dlq_timestamp=text("dlq_timestamp"),
        original_routing_key=text("original_routing_key"),
    )
