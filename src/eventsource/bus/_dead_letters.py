"""Dead-letter headers in one format for every broker, built and read here (driver-free).

A dead letter is the original message with its headers plus:

- `dlq_reason`: why it was given up on (`"<ErrorType>: <message>"`, or why it is undecodable)
- `dlq_error_type`, `dlq_error_message`: the error's class name and message
- `dlq_retry_count`: the failed attempts
- `dlq_timestamp`: when (ISO 8601, UTC)
- `dlq_consumer_group`: the group that gave up on it
- `dlq_original_<name>`: where it was, in the broker's terms (topic, partition and offset;
  queue and exchange; subject and sequence; message id)

Every value is text. Redis keeps the entry field names it has always used, so some are renamed
at its edge (`redis_fields`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

__all__ = [
    "CONSUMER_GROUP",
    "ERROR_MESSAGE",
    "ERROR_TYPE",
    "PREFIX",
    "REASON",
    "RETRY_COUNT",
    "TIMESTAMP",
    "Failure",
    "dead_letter_headers",
    "is_redis_dead_letter_field",
    "redis_fields",
    "without_dead_letter_headers",
]

PREFIX = "dlq_"
REASON = "dlq_reason"
ERROR_TYPE = "dlq_error_type"
ERROR_MESSAGE = "dlq_error_message"
RETRY_COUNT = "dlq_retry_count"
TIMESTAMP = "dlq_timestamp"
CONSUMER_GROUP = "dlq_consumer_group"
ORIGINAL = "dlq_original_"

# The field names Redis entries have always used; the timestamp there is Unix time in seconds.
_REDIS_NAMES = {ORIGINAL + "message_id": "original_message_id", RETRY_COUNT: "retry_count"}
_REDIS_ONLY = frozenset(_REDIS_NAMES.values())

V = TypeVar("V")


@dataclass(frozen=True)
class Failure:
    """Why a group gave up on a message, and after how many failed attempts."""

    reason: str
    error_type: str
    retries: int
    consumer_group: str
    error_message: str | None = None
    """None: the reason without its `"<ErrorType>: "` prefix."""


def _fields(failure: Failure, origin: Mapping[str, object]) -> dict[str, str]:
    message = failure.error_message
    if message is None:
        message = failure.reason.partition(": ")[2] or failure.reason
    fields = {
        REASON: failure.reason,
        ERROR_TYPE: failure.error_type,
        ERROR_MESSAGE: message,
        RETRY_COUNT: str(failure.retries),
        TIMESTAMP: datetime.now(UTC).isoformat(),
        CONSUMER_GROUP: failure.consumer_group,
    }
    fields.update((ORIGINAL + name, str(value)) for name, value in origin.items())
    return fields


def dead_letter_headers(
    headers: Mapping[str, V] | None,
    failure: Failure,
    origin: Mapping[str, object],
    drop: Collection[str] = (),
) -> dict[str, V | str]:
    """The original `headers` (without those in `drop`) plus the dead-letter ones."""
    out: dict[str, V | str] = {k: v for k, v in (headers or {}).items() if k not in drop}
    out.update(_fields(failure, origin))
    return out


def without_dead_letter_headers(
    headers: Mapping[str, V] | None, also: Collection[str] = ()
) -> dict[str, V]:
    """A dead letter's headers as they were before (for a replay): no `dlq_*` ones, nor `also`."""
    return {
        key: value
        for key, value in (headers or {}).items()
        if not key.startswith(PREFIX) and key not in also
    }


def redis_fields(failure: Failure, message_id: str) -> dict[str, str]:
    """The dead-letter fields of a Redis entry: `original_message_id`, `retry_count` and a
    `dlq_timestamp` in Unix seconds, as Redis has always named them; the others as everywhere."""
    fields = _fields(failure, {"message_id": message_id})
    stamp = datetime.fromisoformat(fields[TIMESTAMP]).timestamp()
    out = {_REDIS_NAMES.get(name, name): value for name, value in fields.items()}
    out[TIMESTAMP] = str(stamp)
    return out


def is_redis_dead_letter_field(name: str) -> bool:
    """Whether a Redis entry field was added by dead-lettering (dropped on a replay)."""
    return name.startswith(PREFIX) or name in _REDIS_ONLY
