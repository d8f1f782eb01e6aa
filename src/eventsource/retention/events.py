"""The system event every retention change appends, so projections can react."""

from __future__ import annotations

from eventsource.events.base import DomainEvent

__all__ = ["RETENTION_STREAM_PREFIX", "StreamMetadataChanged", "system_stream_type"]

RETENTION_STREAM_PREFIX = "$retention:"


def system_stream_type(aggregate_type: str) -> str:
    """The aggregate type of the stream a stream's retention changes go to: the changed
    stream's aggregate id, under `"$retention:<aggregate_type>"` (never itself retained)."""
    return f"{RETENTION_STREAM_PREFIX}{aggregate_type}"


class StreamMetadataChanged(DomainEvent):
    """A stream's retention rule or state changed. `aggregate_id` is the stream's;
    `stream_type` its aggregate type; `change` one of "rule_set", "truncated",
    "soft_deleted", "tombstoned", "archived", "unarchived"; the other fields the metadata
    after the change."""

    event_type: str = "StreamMetadataChanged"
    stream_type: str
    change: str
    state: str
    max_age_seconds: float | None = None
    max_count: int | None = None
    truncate_before: int = 0
