"""NATS messages without the driver: headers out, events back, dead-letter headers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from eventsource.bus._codec import UndecodableMessageError, decode_message, event_headers
from eventsource.bus._nats_config import header_text
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.stores._rules import encode_payload

__all__ = ["DLQ_PREFIX", "MSG_ID", "dead_letter_headers", "decode", "encode", "replay_headers"]

MSG_ID = "Nats-Msg-Id"
"""JetStream drops a second message with the same id within the stream's duplicate window."""
DLQ_PREFIX = "dlq_"


def encode(
    event: DomainEvent, trace: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the headers (with the publisher's trace context, when given); the
    event id doubles as the deduplication id, so a publish retried after a lost
    acknowledgement is stored once."""
    headers = event_headers(event, trace)
    if "actor_id" in headers:  # free text: a line break would end the header block
        headers["actor_id"] = header_text(headers["actor_id"])
    headers[MSG_ID] = headers["event_id"]
    return encode_payload(event).encode(), headers


def decode(
    data: bytes, headers: Mapping[str, str] | None, registry: EventRegistry | None
) -> DomainEvent:
    """The event in a message; `UndecodableMessageError` with the reason otherwise."""
    headers = headers or {}
    try:
        payload = data.decode()
    except UnicodeDecodeError as exc:
        raise UndecodableMessageError(
            f"message is not UTF-8 text ({exc})", headers.get("event_id"), headers.get("event_type")
        ) from exc
    fields = {key: value for key, value in headers.items() if key in {"event_type", "event_id"}}
    fields["payload"] = payload
    return decode_message(fields, registry)


def dead_letter_headers(
    headers: Mapping[str, str] | None,
    *,
    reason: str,
    error_type: str,
    deliveries: int,
    consumer_group: str,
    subject: str,
    sequence: int,
) -> dict[str, str]:
    """The original headers plus the `dlq_*` ones; deduplicated per group and stream sequence,
    so a dead letter published twice (a retry) is stored once."""
    out = {key: value for key, value in (headers or {}).items() if key != MSG_ID}
    out.update(
        {
            "dlq_reason": header_text(reason) or error_type,
            "dlq_error_type": error_type,
            "dlq_retry_count": str(deliveries),
            "dlq_consumer_group": consumer_group,
            "dlq_original_subject": subject,
            "dlq_original_sequence": str(sequence),
            "dlq_timestamp": datetime.now(UTC).isoformat(),
            MSG_ID: f"{consumer_group}:{sequence}",
        }
    )
    return out


def replay_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A dead letter's headers without the DLQ ones (and without a deduplication id: the replay
    must not be dropped as a duplicate of the original)."""
    return {
        key: value
        for key, value in (headers or {}).items()
        if not key.startswith(DLQ_PREFIX) and key != MSG_ID
    }
