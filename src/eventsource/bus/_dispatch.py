"""The subscriber registry every bus shares, and running one event's handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from eventsource.bus.interface import Handler, checked_handler, handler_name, invoke_handler
from eventsource.events.base import DomainEvent
from eventsource.protocols import FlexibleEventSubscriber

__all__ = ["BoundHandler", "SubscriberRegistry", "SubscriptionMethods", "run_handlers"]


def _event_type_of(cls: type[DomainEvent]) -> object:
    field = getattr(cls, "model_fields", {}).get("event_type")
    return None if field is None else field.default


def _remove(handlers: list[Handler], handler: Handler) -> bool:
    for index, registered in enumerate(handlers):
        if registered is handler or registered == handler:
            del handlers[index]
            return True
    return False


class SubscriberRegistry:
    """Handlers per exact event class plus wildcard handlers, in registration order."""

    def __init__(self) -> None:
        self.by_type: dict[type[DomainEvent], list[Handler]] = {}
        self.wildcard: list[Handler] = []

    def add(self, event_type: type[DomainEvent], handler: Handler) -> None:
        self.by_type.setdefault(event_type, []).append(handler)

    def remove(self, event_type: type[DomainEvent], handler: Handler) -> bool:
        return _remove(self.by_type.get(event_type, []), handler)

    def add_wildcard(self, handler: Handler) -> None:
        self.wildcard.append(handler)

    def remove_wildcard(self, handler: Handler) -> bool:
        return _remove(self.wildcard, handler)

    def handlers_for(self, event: DomainEvent) -> list[Handler]:
        """The class's handlers, then the wildcard handlers."""
        return [*self.by_type.get(type(event), ()), *self.wildcard]

    def handlers_named(self, event_type: str) -> list[Handler]:
        """`handlers_for` an event given by name: its class's name or its `event_type`."""
        named = [
            handler
            for cls, handlers in self.by_type.items()
            if event_type in (cls.__name__, _event_type_of(cls))
            for handler in handlers
        ]
        return [*named, *self.wildcard]

    def count(self, event_type: type[DomainEvent] | None = None) -> int:
        if event_type is not None:
            return len(self.by_type.get(event_type, ()))
        return sum(len(handlers) for handlers in self.by_type.values())

    def clear(self) -> None:
        self.by_type.clear()
        self.wildcard.clear()


class BoundHandler:
    """A subscribed handler behind one interface: `await bound.handle(event)` calls it in
    whatever form it was subscribed; `original` is that handler, `name` its readable name."""

    __slots__ = ("original",)

    def __init__(self, original: Handler) -> None:
        self.original = original

    @property
    def name(self) -> str:
        return handler_name(self.original)

    async def handle(self, event: DomainEvent) -> None:
        await invoke_handler(self.original, event)


class SubscriptionMethods:
    """The subscription half of the `EventBus` API over a `SubscriberRegistry`."""

    _subscribers: SubscriberRegistry

    def subscribe(self, event_type: type[DomainEvent], handler: Handler | None = None) -> Any:
        """Register `handler` for `event_type`; without one, return a decorator."""
        target = f"{getattr(event_type, '__name__', event_type)} events"
        if handler is None:

            def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
                self._subscribers.add(event_type, checked_handler(func, target))
                return func

            return decorate
        self._subscribers.add(event_type, checked_handler(handler, target))
        return None

    def unsubscribe(self, event_type: type[DomainEvent], handler: Handler) -> bool:
        return self._subscribers.remove(event_type, handler)

    def subscribe_all(self, subscriber: FlexibleEventSubscriber) -> None:
        for event_type in subscriber.subscribed_to():
            self.subscribe(event_type, subscriber)

    def subscribe_to_all_events(self, handler: Handler) -> None:
        self._subscribers.add_wildcard(checked_handler(handler, "all events"))

    def unsubscribe_from_all_events(self, handler: Handler) -> bool:
        return self._subscribers.remove_wildcard(handler)

    def get_subscriber_count(self, event_type: type[DomainEvent] | None = None) -> int:
        return self._subscribers.count(event_type)

    def get_wildcard_subscriber_count(self) -> int:
        return len(self._subscribers.wildcard)

    def clear_subscribers(self) -> None:
        self._subscribers.clear()


async def run_handlers(
    handlers: list[Handler],
    event: DomainEvent,
    call: Callable[[Handler, DomainEvent], Any] = invoke_handler,
) -> list[tuple[Handler, Exception]]:
    """Run `handlers` on `event` concurrently; return the failures instead of raising."""
    if len(handlers) == 1:  # the common case: no gather, no closure
        try:
            await call(handlers[0], event)
        except Exception as exc:  # every handler failure is reported, none escapes
            return [(handlers[0], exc)]
        return []
    if not handlers:
        return []

    async def one(handler: Handler) -> tuple[Handler, Exception] | None:
        try:
            await call(handler, event)
        except Exception as exc:
            return handler, exc
        return None

    outcomes = await asyncio.gather(*(one(h) for h in handlers))
    return [outcome for outcome in outcomes if outcome is not None]
