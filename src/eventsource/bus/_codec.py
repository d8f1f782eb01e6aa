"""Events to broker messages and back, for every broker bus: headers plus a JSON body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import CorruptEventError, EventBusError, PersonalDataError
from eventsource.stores.codec import decode_event, encode_payload

__all__ = [
    "PAYLOAD",
    "UndecodableMessageError",
    "decode_message",
    "describe_error",
    "encode_entry",
    "encode_message",
    "event_headers",
    "message_essentials",
    "text_fields",
]

PAYLOAD = "payload"
"""The field (or body) holding the event's full JSON dump."""


class UndecodableMessageError(EventBusError):
    """A consumed message cannot become an event; `reason` goes to the dead-letter queue."""

    def __init__(
        self, reason: str, event_id: str | None = None, event_type: str | None = None
    ) -> None:
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type
        super().__init__(f"Undecodable message (event {event_id}, type {event_type}): {reason}")


def event_headers(event: DomainEvent, trace: Mapping[str, str] | None = None) -> dict[str, str]:
    """The routing and tracing headers of a message; optional ids only when set. `trace` is
    the publisher's trace context (`BrokerEventBus._trace_headers()`: W3C `traceparent`, ...),
    added as headers of its own so a consumer's span joins the publisher's trace."""
    headers = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "aggregate_id": str(event.aggregate_id),
        "aggregate_type": event.aggregate_type,
        "aggregate_version": str(event.aggregate_version),
        "occurred_at": event.occurred_at.isoformat(),
        "correlation_id": str(event.correlation_id),
    }
    if event.tenant_id is not None:
        headers["tenant_id"] = str(event.tenant_id)
    if event.causation_id is not None:
        headers["causation_id"] = str(event.causation_id)
    if event.actor_id is not None:
        headers["actor_id"] = event.actor_id
    if trace:
        headers.update(trace)
    return headers


def encode_message(event: DomainEvent, trace: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers plus the `payload` field; `SerializationError` before anything is sent."""
    fields = event_headers(event, trace)
    fields[PAYLOAD] = encode_payload(event)
    return fields


def encode_entry(event: DomainEvent, trace: Mapping[str, str] | None = None) -> dict[str, str]:
    """The compact form for brokers whose every field costs parsing on each read (a Redis
    stream entry): the identifying fields, the trace context when given, and the payload."""
    fields = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "aggregate_id": str(event.aggregate_id),
        "aggregate_type": event.aggregate_type,
        "occurred_at": event.occurred_at.isoformat(),
    }
    if event.tenant_id is not None:
        fields["tenant_id"] = str(event.tenant_id)
    if trace:
        fields.update(trace)
    fields[PAYLOAD] = encode_payload(event)
    return fields


def text_fields(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    """A message's fields as text; invalid UTF-8 is an `UndecodableMessageError`."""
    try:
        return {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
    except UnicodeDecodeError as exc:
        raise UndecodableMessageError(f"message is not UTF-8 text ({exc})") from exc


def decode_message(
    fields: Mapping[bytes, bytes] | Mapping[str, str], registry: EventRegistry | None
) -> DomainEvent:
    """Rebuild the event as its registered class (the registry, then the default one)."""
    event_type, event_id, payload = message_essentials(fields)
    if not event_type or payload is None:
        raise UndecodableMessageError("message has no event_type or no payload", event_id)
    try:
        return decode_event(event_type, payload, registry, event_id)
    except CorruptEventError as exc:
        raise UndecodableMessageError(exc.reason, event_id, event_type) from exc
    except PersonalDataError as exc:  # sealed fields without their keys, or tampered ones
        raise UndecodableMessageError(str(exc), event_id, event_type) from exc


def message_essentials(
    fields: Mapping[bytes, bytes] | Mapping[str, str],
) -> tuple[str | None, str | None, str | None]:
    """event_type, event_id and payload as text, decoding only those (the hot path)."""
    raw: Mapping[Any, Any] = fields
    try:
        if b"payload" in raw:
            event_type, event_id = raw.get(b"event_type"), raw.get(b"event_id")
            return (
                event_type.decode() if event_type is not None else None,
                event_id.decode() if event_id is not None else None,
                raw[b"payload"].decode(),
            )
    except UnicodeDecodeError as exc:
        raise UndecodableMessageError(f"message is not UTF-8 text ({exc})") from exc
    text = text_fields(fields)
    return text.get("event_type"), text.get("event_id"), text.get(PAYLOAD)


def describe_error(error: BaseException) -> str:
    """`Type: message`, the reason recorded with a dead letter."""
    return f"{type(error).__name__}: {error}"
