"""NATS messages without the driver: headers out, events back, dead-letter headers, and the
server's size limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventsource.bus._codec import UndecodableMessageError, decode_message, event_headers
from eventsource.bus._dead_letters import PREFIX, Failure, without_dead_letter_headers
from eventsource.bus._dead_letters import dead_letter_headers as _dead_letter_headers
from eventsource.bus._nats_config import header_text
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError
from eventsource.stores.codec import encode_payload

__all__ = [
    "DLQ_PREFIX",
    "MSG_ID",
    "ORIGINAL_SIZE",
    "check_sizes",
    "dead_letter_headers",
    "decode",
    "encode",
    "fit_dead_letter",
    "message_size",
    "replay_headers",
]

MSG_ID = "Nats-Msg-Id"
"""JetStream drops a second message with the same id within the stream's duplicate window."""
DLQ_PREFIX = PREFIX
ORIGINAL_SIZE = "dlq_original_size"
"""On a dead letter whose body was cut to fit the server's limit: the original body's size."""
_REASON_LIMIT = 4000  # characters of a failure's description kept in `dlq_reason`
_KEPT_WHEN_CUT = frozenset({"event_id", "event_type", MSG_ID})
_HEADER_BLOCK = len(b"NATS/1.0\r\n\r\n")


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
    # Header values are one line (a line break would end the header block).
    line = header_text(reason)[:_REASON_LIMIT] or error_type
    failure = Failure(line, error_type, deliveries, consumer_group)
    origin = {"subject": subject, "sequence": sequence}
    out = _dead_letter_headers(headers, failure, origin, drop={MSG_ID})
    out[MSG_ID] = f"{consumer_group}:{sequence}"
    return out


def replay_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A dead letter's headers without the DLQ ones (and without a deduplication id: the replay
    must not be dropped as a duplicate of the original)."""
    return without_dead_letter_headers(headers, also={MSG_ID})


def message_size(body: bytes, headers: Mapping[str, str]) -> int:
    """What the server counts against its `max_payload`: the body plus the header block as
    nats-py writes it (`NATS/1.0`, a `key: value` line each, a blank line). nats-py checks only
    the body; a message over the limit makes the server close the connection for good."""
    lines = sum(len(key) + len(value.encode()) + 4 for key, value in headers.items())
    return len(body) + _HEADER_BLOCK + lines


def check_sizes(messages: Sequence[tuple[str, bytes, dict[str, str]]], max_payload: int) -> None:
    """`EventBusError` naming the first event the server would refuse, before anything is sent."""
    for subject, body, headers in messages:
        if (size := message_size(body, headers)) > max_payload:
            raise EventBusError(
                f"event {headers.get('event_id')} ({subject}) is {size} bytes with its headers, "
                f"over the NATS server's max_payload of {max_payload}; nothing was published"
            )


def fit_dead_letter(
    body: bytes, headers: dict[str, str], max_payload: int
) -> tuple[bytes, dict[str, str]]:
    """The dead letter as the server accepts it: unchanged when it fits; otherwise its body cut
    to the room left and marked with `ORIGINAL_SIZE` (the whole original stays in the stream
    at `dlq_original_sequence`, where a replay takes it from). When the original's own headers
    leave no room, only those that identify it are kept."""
    if message_size(body, headers) <= max_payload:
        return body, headers
    cut = {**headers, ORIGINAL_SIZE: str(len(body))}
    if message_size(b"", cut) > max_payload:
        cut = {k: v for k, v in cut.items() if k.startswith(DLQ_PREFIX) or k in _KEPT_WHEN_CUT}
    room = max_payload - message_size(b"", cut)
    if room < 0:
        raise EventBusError(
            f"a dead letter's headers alone take {max_payload - room} bytes, over the NATS "
            f"server's max_payload of {max_payload}"
        )
    return body[:room], cut
