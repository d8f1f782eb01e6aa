"""Event builders: streams of valid events for tests, with consecutive versions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from eventsource._ids import new_uuid4
from eventsource.events.base import DomainEvent

__all__ = ["build_stream", "event_factory"]

E = TypeVar("E", bound=DomainEvent)


def event_factory(
    event_class: type[E], aggregate_id: UUID | None = None, **defaults: object
) -> Callable[..., E]:
    """A function building `event_class` events for one aggregate with consecutive versions.

    `make = event_factory(Deposited, amount=5); make(); make(amount=7)` gives versions 1 and 2.
    """
    target = aggregate_id or new_uuid4()
    version = 0

    def make(**fields: object) -> E:
        nonlocal version
        version += 1
        values = {"aggregate_id": target, "aggregate_version": version, **defaults, **fields}
        return event_class(**values)

    return make


def build_stream(
    *specs: tuple[type[DomainEvent], Mapping[str, object]],
    aggregate_id: UUID | None = None,
    tenant_id: UUID | None = None,
    start: datetime | None = None,
    spacing: timedelta = timedelta(seconds=1),
) -> list[DomainEvent]:
    """One aggregate's events from `(class, fields)` pairs: versions 1..n, times `spacing` apart."""
    target = aggregate_id or new_uuid4()
    moment = start or datetime.now(UTC)
    events: list[DomainEvent] = []
    for version, (event_class, fields) in enumerate(specs, start=1):
        events.append(event_class(**{
            "aggregate_id": target,
            "aggregate_version": version,
            "tenant_id": tenant_id,
            "occurred_at": moment + spacing * (version - 1),
            **fields,
        }))
    return events
