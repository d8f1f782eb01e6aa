"""Fan-out helpers for projections you drive yourself (eventsource-py 0.2.0's coordinator module).

`ProjectionRegistry` hands each event to every registered projection and to the registered
handlers that accept it; `SubscriberRegistry` does the same for subscribers, choosing them by
the event classes they declare; `ProjectionCoordinator` replays a list of events through a
registry or into one projection (rebuild, catch-up). They run in the caller's task and read
nothing themselves: to follow a store, with checkpoints and retries, subscribe the projection
to a `SubscriptionManager` instead.

Delivery: the targets of one event run concurrently and each gets the event even when another
fails. A failure is logged (logger `eventsource.projections.coordinator`, with the traceback)
and does not stop the dispatch, as in 0.2.0; the projection itself has dead-lettered the event
if it keeps a dead-letter queue. Events of `dispatch_many` go one after another, in order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from eventsource.events.base import DomainEvent
from eventsource.exceptions import InvalidHandlerError
from eventsource.protocols import FlexibleEventSubscriber

__all__ = [
    "EventHandlerBase",
    "ProjectionCoordinator",
    "ProjectionRegistry",
    "SubscriberRegistry",
    "SyncProjection",
]

logger = logging.getLogger(__name__)


class SyncProjection(ABC):
    """A projection without I/O: synchronous `handle(event)` and `reset()`.

    `ProjectionRegistry` and `ProjectionCoordinator` accept it next to async projections and
    call it directly. It receives every event it is given: filter by type in `handle`.
    """

    @abstractmethod
    def handle(self, event: DomainEvent) -> None:
        """Apply one event to the read model."""

    @abstractmethod
    def reset(self) -> None:
        """Clear everything `handle` wrote."""


class EventHandlerBase(ABC):
    """A handler that chooses its events: `can_handle(event)`, then async `handle(event)`.

    Register it with `ProjectionRegistry.register_handler`; the registry calls `handle` only
    for events `can_handle` accepts.
    """

    @abstractmethod
    def can_handle(self, event: DomainEvent) -> bool:
        """Whether this handler wants `event`."""

    @abstractmethod
    async def handle(self, event: DomainEvent) -> None:
        """Handle one event `can_handle` accepted."""


def _name(target: object) -> str:
    return type(target).__name__


def _require(target: object, methods: Sequence[str], role: str) -> None:
    missing = [m for m in methods if not callable(getattr(target, m, None))]
    if missing:
        raise InvalidHandlerError(
            f"Cannot register {target!r} as a {role}: it has no {', '.join(missing)}()"
        )


async def _settle(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result


async def _call(target: Any, method: str, *args: Any) -> None:
    await _settle(getattr(target, method)(*args))


async def _deliver(event: DomainEvent, targets: Sequence[tuple[str, Any]]) -> None:
    """`event` to every target at once; each failure logged, none raised."""
    if not targets:
        return
    results = await asyncio.gather(
        *(_call(target, "handle", event) for _role, target in targets), return_exceptions=True
    )
    for (role, target), result in zip(targets, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            logger.error(
                "%s %s failed on %s %s: %r", role, _name(target), event.event_type,
                event.event_id, result, exc_info=result,
            )


class ProjectionRegistry:
    """Projections (async `Projection` or `SyncProjection`) and `EventHandlerBase` handlers,
    each event handed to all of them at once.

    `enable_tracing` is accepted for 0.2.0's signature; the projections record their own spans.
    """

    def __init__(self, enable_tracing: bool = False) -> None:
        self.enable_tracing = enable_tracing
        self._projections: list[Any] = []
        self._handlers: list[EventHandlerBase] = []

    def register_projection(self, projection: Any) -> None:
        """Add a projection: any object with `handle(event)` and `reset()`, sync or async.
        `InvalidHandlerError` (a `TypeError`) for anything else."""
        _require(projection, ("handle", "reset"), "projection")
        self._projections.append(projection)

    def register_handler(self, handler: EventHandlerBase) -> None:
        """Add a handler: an object with `can_handle(event)` and async `handle(event)`."""
        _require(handler, ("can_handle", "handle"), "handler")
        self._handlers.append(handler)

    def unregister_projection(self, projection: Any) -> bool:
        """Remove a projection; False if it was not registered."""
        return _remove(self._projections, projection)

    def unregister_handler(self, handler: EventHandlerBase) -> bool:
        """Remove a handler; False if it was not registered."""
        return _remove(self._handlers, handler)

    @property
    def projections(self) -> list[Any]:
        """The registered projections, in registration order (a copy)."""
        return list(self._projections)

    @property
    def handlers(self) -> list[EventHandlerBase]:
        """The registered handlers, in registration order (a copy)."""
        return list(self._handlers)

    def get_projection_count(self) -> int:
        return len(self._projections)

    def get_handler_count(self) -> int:
        return len(self._handlers)

    async def dispatch(self, event: DomainEvent) -> None:
        """`event` to every projection and to each handler whose `can_handle` accepts it,
        concurrently; failures are logged and do not reach the others."""
        targets = [("Projection", p) for p in self._projections]
        targets += [("Handler", h) for h in self._handlers if h.can_handle(event)]
        await _deliver(event, targets)

    async def dispatch_many(self, events: Iterable[DomainEvent]) -> None:
        """Each event in order, the next once every target has the previous one."""
        for event in events:
            await self.dispatch(event)

    async def reset_all(self) -> None:
        """`reset()` every projection, one after another."""
        for projection in self._projections:
            await _call(projection, "reset")


def _remove(items: list[Any], item: object) -> bool:
    try:
        items.remove(item)
    except ValueError:
        return False
    return True


class ProjectionCoordinator:
    """Replays events through a `ProjectionRegistry`: dispatch, rebuild (reset, then replay),
    catch-up (replay without reset), each returning the number of events replayed.

    `batch_size` and `poll_interval_seconds` are kept and reported by `health_check()`, as in
    0.2.0; the coordinator does not poll a store (a `SubscriptionManager` does).
    """

    def __init__(
        self,
        registry: ProjectionRegistry,
        batch_size: int = 100,
        poll_interval_seconds: float = 1.0,
        enable_tracing: bool = False,
    ) -> None:
        self.registry = registry
        self.batch_size = batch_size
        self.poll_interval_seconds = poll_interval_seconds
        self.enable_tracing = enable_tracing

    async def dispatch_events(self, events: Sequence[DomainEvent]) -> int:
        """Every event to the registry, in order."""
        await self.registry.dispatch_many(events)
        return len(events)

    async def rebuild_all(self, events: Sequence[DomainEvent]) -> int:
        """Reset every projection, then replay `events` (all of them, oldest first)."""
        await self.registry.reset_all()
        return await self.dispatch_events(events)

    async def rebuild_projection(self, projection: Any, events: Sequence[DomainEvent]) -> int:
        """Reset one projection and replay `events` into it alone, in order. A failure stops
        the replay and is raised: a rebuild that skipped an event would be wrong."""
        await _call(projection, "reset")
        return await self.catchup(projection, events)

    async def catchup(self, projection: Any, events: Sequence[DomainEvent]) -> int:
        """Replay the events a projection missed into it, in order, without a reset. A failure
        stops the replay and is raised."""
        for event in events:
            await _call(projection, "handle", event)
        return len(events)

    def get_projection_info(self) -> list[dict[str, Any]]:
        """`{"name", "type"}` of each registered projection."""
        return [{"name": _name(p), "type": _name(p)} for p in self.registry.projections]

    async def health_check(self) -> dict[str, Any]:
        """What is registered and how the coordinator is set up; `status` is `healthy` (it
        holds no connection that could fail)."""
        return {
            "status": "healthy",
            "projection_count": self.registry.get_projection_count(),
            "handler_count": self.registry.get_handler_count(),
            "projections": [_name(p) for p in self.registry.projections],
            "handlers": [_name(h) for h in self.registry.handlers],
            "batch_size": self.batch_size,
            "poll_interval_seconds": self.poll_interval_seconds,
        }


class SubscriberRegistry:
    """Subscribers (`subscribed_to()` and `handle(event)`, sync or async), each event handed at
    once to those that declared its class or a base class of it."""

    def __init__(self) -> None:
        self._subscribers: list[FlexibleEventSubscriber] = []

    def register(self, subscriber: FlexibleEventSubscriber) -> None:
        """Add a subscriber; `InvalidHandlerError` (a `TypeError`) if it lacks a method."""
        _require(subscriber, ("subscribed_to", "handle"), "subscriber")
        self._subscribers.append(subscriber)

    def unregister(self, subscriber: FlexibleEventSubscriber) -> bool:
        """Remove a subscriber; False if it was not registered."""
        return _remove(self._subscribers, subscriber)

    def get_subscribers_for(self, event_type: type[DomainEvent]) -> list[FlexibleEventSubscriber]:
        """The subscribers that declared `event_type` or one of its bases, in order."""
        return [
            s for s in self._subscribers
            if any(issubclass(event_type, declared) for declared in s.subscribed_to())
        ]

    async def dispatch(self, event: DomainEvent) -> None:
        """`event` to its subscribers, concurrently; failures are logged."""
        await _deliver(event, [("Subscriber", s) for s in self.get_subscribers_for(type(event))])

    async def dispatch_many(self, events: Iterable[DomainEvent]) -> None:
        """Each event in order, the next once its subscribers have the previous one."""
        for event in events:
            await self.dispatch(event)
