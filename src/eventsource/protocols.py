"""Handler and subscriber protocols shared by buses, projections and subscriptions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from eventsource.events.base import DomainEvent
from eventsource.stores.interface import EventPublisher

__all__ = [
    "AsyncEventHandler",
    "EventHandler",
    "EventHandlerFunc",
    "EventPublisher",
    "EventSubscriber",
    "FlexibleEventHandler",
    "FlexibleEventSubscriber",
    "SyncEventHandler",
]

EventHandlerFunc = Callable[[DomainEvent], Awaitable[None] | None]


@runtime_checkable
class EventHandler(Protocol):
    """An object with an async `handle(event)`."""

    async def handle(self, event: DomainEvent) -> None: ...


@runtime_checkable
class SyncEventHandler(Protocol):
    """An object with a synchronous `handle(event)`."""

    def handle(self, event: DomainEvent) -> None: ...


@runtime_checkable
class FlexibleEventHandler(Protocol):
    """An object whose `handle(event)` returns an awaitable or None."""

    def handle(self, event: DomainEvent) -> Awaitable[None] | None: ...


class EventSubscriber(ABC):
    """Declares the event classes it wants and handles them.

    An ABC (projections subclass it), and also checked by shape, as eventsource-py 0.2.0's
    runtime-checkable protocol of the same name was: any object with callable `subscribed_to`
    and `handle` is an instance for `isinstance` and `issubclass`.
    """

    @abstractmethod
    def subscribed_to(self) -> list[type[DomainEvent]]:
        """The event classes this subscriber handles."""

    @abstractmethod
    async def handle(self, event: DomainEvent) -> None:
        """Handle one event."""

    @classmethod
    def __subclasshook__(cls, candidate: type) -> Any:  # True, or NotImplemented: ask as usual
        if cls is not EventSubscriber:  # subclasses keep the ordinary ABC check
            return NotImplemented
        has = (callable(getattr(candidate, name, None)) for name in ("subscribed_to", "handle"))
        return True if all(has) else NotImplemented


@runtime_checkable
class FlexibleEventSubscriber(Protocol):
    """Any object with `subscribed_to()` and `handle(event)`."""

    def subscribed_to(self) -> list[type[DomainEvent]]: ...

    def handle(self, event: DomainEvent) -> object: ...


class AsyncEventHandler(ABC):
    """A handler class declaring which event types it handles."""

    @abstractmethod
    async def handle(self, event: DomainEvent) -> None:
        """Handle one event."""

    def event_types(self) -> list[type[DomainEvent]]:
        """The event classes handled; empty means all."""
        return []

    def can_handle(self, event: DomainEvent) -> bool:
        types = self.event_types()
        return not types or isinstance(event, tuple(types))
