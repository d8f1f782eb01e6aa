"""The event registry: event-type names to classes, so stores and buses can rebuild events."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar, overload

from eventsource.events.base import DomainEvent
from eventsource.exceptions import DuplicateEventTypeError, EventTypeNotFoundError

__all__ = [
    "EVOLUTION_SEEN",
    "DuplicateEventTypeError",
    "EventRegistry",
    "EventTypeNotFoundError",
    "default_registry",
    "get_event_class",
    "get_event_class_or_none",
    "is_event_registered",
    "list_registered_events",
    "register_event",
    "resolve_event_class",
]

E = TypeVar("E", bound=type[DomainEvent])


def event_type_name(event_class: type[DomainEvent], event_type: str | None = None) -> str:
    """The name a class registers under: explicit, else its `event_type` default, else its name."""
    if event_type is not None:
        return event_type
    field = event_class.model_fields.get("event_type")
    default = getattr(field, "default", None)
    return default if isinstance(default, str) else event_class.__name__


class EventRegistry:
    """A thread-safe map from event-type strings to `DomainEvent` subclasses."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        self._aliases: dict[str, type[DomainEvent]] = {}  # old names (`renamed_from`)
        self._lock = threading.Lock()

    def register(self, event_class: E, event_type: str | None = None) -> E:
        """Register `event_class`; the same class again is a no-op, another class raises."""
        if not (isinstance(event_class, type) and issubclass(event_class, DomainEvent)):
            raise TypeError(f"Only DomainEvent subclasses can be registered, got {event_class!r}")
        name = event_type_name(event_class, event_type)
        with self._lock:
            existing = self._classes.get(name)
            if existing is not None and existing is not event_class:
                raise DuplicateEventTypeError(name, existing, event_class)
            aliases = _checked_aliases(self, name, event_class)
            self._classes[name] = event_class
            self._aliases.update(aliases)
            if aliases:
                EVOLUTION_SEEN[0] = True
        return event_class

    def aliases(self) -> dict[str, type[DomainEvent]]:
        """Old type names (`renamed_from`) and the class each resolves to."""
        return dict(self._aliases)

    def get(self, name: str) -> type[DomainEvent]:
        """The class for `name`; `EventTypeNotFoundError` if there is none."""
        found = self._classes.get(name)
        if found is None:
            raise EventTypeNotFoundError(name, self.list_types())
        return found

    def get_or_none(self, name: str) -> type[DomainEvent] | None:
        """The class for `name` (a live name, else an old one from `renamed_from`), or None."""
        found = self._classes.get(name)
        return found if found is not None else self._aliases.get(name)

    def contains(self, name: str) -> bool:
        """True if `name` is registered."""
        return name in self._classes

    def list_types(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def list_classes(self) -> list[type[DomainEvent]]:
        """Registered classes, by sorted name."""
        return [self._classes[name] for name in self.list_types()]

    def unregister(self, name: str) -> bool:
        """Remove `name`; True if it was registered."""
        with self._lock:
            gone = self._classes.pop(name, None)
            if gone is not None:
                self._aliases = {k: v for k, v in self._aliases.items() if v is not gone}
            return gone is not None

    def clear(self) -> None:
        """Remove every registration."""
        with self._lock:
            self._classes.clear()
            self._aliases.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._classes))

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"EventRegistry({len(self._classes)} types)"


EVOLUTION_SEEN = [False]
"""Set once any registry registers an old name (`renamed_from`) or any upcaster is registered:
until then the in-memory store's append skips looking for objects of an older shape."""


def _checked_aliases(
    registry: EventRegistry, name: str, event_class: type[DomainEvent]
) -> dict[str, type[DomainEvent]]:
    """`event_class`'s old names; AliasConflictError if one is a live name or another class's
    old name, or if `name` is already another class's old name."""
    from eventsource.evolution.errors import AliasConflictError

    claimed = registry._aliases.get(name)
    if claimed is not None and claimed is not event_class:
        raise AliasConflictError(
            f"{event_class.__qualname__} registers as {name!r}, which "
            f"{claimed.__qualname__}.renamed_from lists as its old name"
        )
    found: dict[str, type[DomainEvent]] = {}
    for alias in event_class.renamed_from:
        live = registry._classes.get(alias)
        if alias == name or (live is not None and live is not event_class):
            owner = event_class if live is None else live
            raise AliasConflictError(
                f"{event_class.__qualname__}.renamed_from lists {alias!r}, the live type name "
                f"of {owner.__qualname__}"
            )
        other = registry._aliases.get(alias)
        if other is not None and other is not event_class:
            raise AliasConflictError(
                f"{event_class.__qualname__}.renamed_from and {other.__qualname__}.renamed_from "
                f"both list {alias!r}"
            )
        found[alias] = event_class
    return found


default_registry = EventRegistry()


def resolve_event_class(name: str, registry: EventRegistry | None = None) -> type[DomainEvent]:
    """The lookup rule of every deserialising component: its registry, then the default one."""
    if registry is not None:
        found = registry.get_or_none(name)
        if found is not None:
            return found
    found = default_registry.get_or_none(name)
    if found is None:
        known = sorted(set(default_registry.list_types()) | set(registry or ()))
        raise EventTypeNotFoundError(name, known)
    return found


@overload
def register_event(event_class: E, /) -> E: ...
@overload
def register_event(
    *, event_type: str | None = None, registry: EventRegistry | None = None
) -> Callable[[E], E]: ...


def register_event(
    event_class: E | None = None,
    /,
    *,
    event_type: str | None = None,
    registry: EventRegistry | None = None,
) -> E | Callable[[E], E]:
    """Register an event class: `@register_event`, `@register_event()` or with keywords."""
    target = registry if registry is not None else default_registry

    def decorate(cls: E) -> E:
        return target.register(cls, event_type)

    if event_class is None:
        return decorate
    return decorate(event_class)


def is_event_registered(name: str) -> bool:
    """True if `name` is in the default registry."""
    return default_registry.contains(name)


def list_registered_events() -> list[str]:
    """The default registry's names, sorted."""
    return default_registry.list_types()


def get_event_class(name: str) -> type[DomainEvent]:
    """The default registry's class for `name`."""
    return default_registry.get(name)


def get_event_class_or_none(name: str) -> type[DomainEvent] | None:
    """The default registry's class for `name`, or None."""
    return default_registry.get_or_none(name)
