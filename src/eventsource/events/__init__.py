"""Domain events and the event registry (no I/O)."""

from eventsource.events.base import DomainEvent
from eventsource.events.registry import (
    DuplicateEventTypeError,
    EventRegistry,
    EventTypeNotFoundError,
    default_registry,
    get_event_class,
    get_event_class_or_none,
    is_event_registered,
    list_registered_events,
    register_event,
)

__all__ = [
    "DomainEvent",
    "DuplicateEventTypeError",
    "EventRegistry",
    "EventTypeNotFoundError",
    "default_registry",
    "get_event_class",
    "get_event_class_or_none",
    "is_event_registered",
    "list_registered_events",
    "register_event",
]
