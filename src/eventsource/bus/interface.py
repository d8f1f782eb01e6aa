"""The `EventBus` contract and the handler adapter every bus shares."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eventsource.events.base import DomainEvent
from eventsource.exceptions import InvalidHandlerError
from eventsource.protocols import (
    AsyncEventHandler,
    EventHandler,
    EventHandlerFunc,
    EventSubscriber,
    FlexibleEventHandler,
    FlexibleEventSubscriber,
    SyncEventHandler,
)

__all__ = [
    "AsyncEventHandler",
    "EventBus",
    "EventHandler",
    "EventHandlerFunc",
    "EventSubscriber",
    "FlexibleEventHandler",
    "FlexibleEventSubscriber",
    "Handler",
    "SyncEventHandler",
    "checked_handler",
    "handler_name",
    "invoke_handler",
]

Handler = Callable[[DomainEvent], Any] | Any


async def invoke_handler(handler: Handler, event: DomainEvent) -> None:
    """Call a handler in any supported form: async or sync callable, or an object with a sync or
    async `handle(event)`; a returned awaitable is awaited."""
    target: Callable[[DomainEvent], Any] = (
        handler.handle
        if hasattr(handler, "handle")
        and not inspect.isfunction(handler)
        and not inspect.ismethod(handler)
        else handler
    )
    result = target(event)
    if inspect.isawaitable(result):
        await result


def checked_handler(handler: Handler, target: str) -> Handler:
    """`handler` if `invoke_handler` can call it (a callable, or an object with a callable
    `handle`); otherwise InvalidHandlerError naming it and `target`, what it was subscribed to."""
    if callable(handler) or callable(getattr(handler, "handle", None)):
        return handler
    raise InvalidHandlerError(
        f"Cannot subscribe {handler!r} to {target}: a handler must be a callable or an object "
        "with handle(event)"
    )


def handler_name(handler: Handler) -> str:
    """A readable name for logs and spans."""
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return str(name)


class EventBus(ABC):
    """Publishes events to subscribed handlers. Every bus is also an `EventPublisher`."""

    @abstractmethod
    async def publish(self, events: Sequence[DomainEvent], background: bool = False) -> None:
        """Deliver `events` to their handlers."""

    @abstractmethod
    def subscribe(self, event_type: type[DomainEvent], handler: Handler) -> Any:
        """Register `handler` for one event class."""

    @abstractmethod
    def unsubscribe(self, event_type: type[DomainEvent], handler: Handler) -> bool:
        """Remove the first registration of `handler` (by identity); False if none."""

    @abstractmethod
    def subscribe_all(self, subscriber: FlexibleEventSubscriber) -> None:
        """Register `subscriber` for every class in its `subscribed_to()`."""

    @abstractmethod
    def subscribe_to_all_events(self, handler: Handler) -> None:
        """Register a wildcard handler."""

    @abstractmethod
    def unsubscribe_from_all_events(self, handler: Handler) -> bool:
        """Remove a wildcard handler; False if it was not registered."""


AwaitableHandler = Callable[[DomainEvent], Awaitable[None]]
