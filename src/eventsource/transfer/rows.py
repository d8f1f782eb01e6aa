"""What moves between stores in a transfer: an event's stored form, a new event on its way to
the target, and a job's recorded progress."""

from __future__ import annotations

from typing import NamedTuple

from eventsource.events.base import DomainEvent

__all__ = ["JobState", "Outgoing", "RawEvent"]


class RawEvent(NamedTuple):
    """One stored event as the store holds it: the payload is the stored JSON text, never
    re-dumped, and times are ISO-8601 UTC texts with microseconds."""

    position: int
    event_id: str
    event_type: str
    aggregate_id: str
    aggregate_type: str
    tenant_id: str | None
    actor_id: str | None
    version: int
    timestamp: str
    payload: str
    stored_at: str


class Outgoing(NamedTuple):
    """An event a copy writes: into stream (`event.aggregate_id`, `aggregate_type`), with its
    JSON dump (made, and checked, before anything is written)."""

    event: DomainEvent
    aggregate_type: str
    payload: str


class JobState(NamedTuple):
    """A job's progress row: every source event at or before `position` is done."""

    position: int
    events_read: int
    events_written: int
    finished: bool = False
