"""Reading any stored event, with or without its class, and showing it as plain data.

An operator must see every event, including those whose class the process does not have
(no `--app`, or a type since removed): the registry the command line gives the store falls
back to `UnknownEvent`, which keeps every stored field as it was stored.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, default_registry
from eventsource.stores.interface import StoredEvent

__all__ = ["BrowsingRegistry", "UnknownEvent", "event_record", "resolve_known"]

_ENVELOPE = frozenset(DomainEvent.model_fields)


class UnknownEvent(DomainEvent):
    """A stored event of a type no class is registered for; its payload fields are extras."""

    model_config = ConfigDict(frozen=True, extra="allow")


def resolve_known(name: str, registry: EventRegistry | None) -> type[DomainEvent] | None:
    """The class registered for `name` (the app's registry, then the default one), or None."""
    found = registry.get_or_none(name) if registry is not None else None
    return found if found is not None else default_registry.get_or_none(name)


class BrowsingRegistry(EventRegistry):
    """The app's registry (then the default one), with `UnknownEvent` for every other type."""

    def __init__(self, app_registry: EventRegistry | None) -> None:
        super().__init__()
        self._app_registry = app_registry
        if app_registry is not None:  # the store reads with the app's upcasters, if bound
            from eventsource.evolution.upcasting import _BOUND, upcasters_for

            _BOUND[self] = upcasters_for(app_registry)

    def get_or_none(self, name: str) -> type[DomainEvent] | None:
        return resolve_known(name, self._app_registry) or UnknownEvent


def event_record(stored: StoredEvent) -> dict[str, Any]:
    """A stored event as JSON-ready data: where it is stored, its envelope, and its payload."""
    event = stored.event
    dumped = event.model_dump(mode="json")
    return {
        "global_position": stored.global_position,
        "stream_id": stored.stream_id,
        "stream_position": stored.stream_position,
        "event_id": dumped["event_id"],
        "event_type": event.event_type,
        "event_version": event.event_version,
        "known": not isinstance(event, UnknownEvent),
        "occurred_at": dumped["occurred_at"],
        "stored_at": stored.stored_at.isoformat(),
        "tenant_id": dumped["tenant_id"],
        "actor_id": dumped["actor_id"],
        "correlation_id": dumped["correlation_id"],
        "causation_id": dumped["causation_id"],
        "metadata": dumped["metadata"],
        "data": {key: value for key, value in dumped.items() if key not in _ENVELOPE},
    }
