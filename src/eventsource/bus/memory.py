"""`InMemoryEventBus`: in-process publish/subscribe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from eventsource.bus._dispatch import SubscriberRegistry, SubscriptionMethods
from eventsource.bus._spans import BusSpans
from eventsource.bus.interface import EventBus, handler_name
from eventsource.events.base import DomainEvent

__all__ = ["InMemoryEventBus"]

logger = logging.getLogger(__name__)


class InMemoryEventBus(SubscriptionMethods, BusSpans, EventBus):
    """Delivers each event to its class's handlers and the wildcard handlers, concurrently.

    A failing handler is logged and counted; it never stops the others or reaches the publisher.
    """

    def __init__(self, *, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._subscribers = SubscriberRegistry()
        self._background: set[asyncio.Task[None]] = set()
        self._stats = {
            "events_published": 0,
            "handlers_invoked": 0,
            "handler_errors": 0,
            "background_tasks_created": 0,
            "background_tasks_completed": 0,
        }

    async def publish(self, events: Sequence[DomainEvent], background: bool = False) -> None:
        """Dispatch events one by one, in order; `background=True` returns at once."""
        if not events:
            return
        if background:
            task = asyncio.create_task(self._dispatch_all(list(events)))
            self._stats["background_tasks_created"] += 1
            self._background.add(task)
            task.add_done_callback(self._background_done)
            return
        await self._dispatch_all(events)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        self._stats["background_tasks_completed"] += 1

    async def _dispatch_all(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            handlers = self._subscribers.handlers_for(event)
            failures = await self._run_handlers(handlers, event)
            stats = self._stats
            stats["handlers_invoked"] += len(handlers) - len(failures)
            stats["events_published"] += 1
            if failures:
                stats["handler_errors"] += len(failures)
                for handler, error in failures:
                    logger.error(
                        "Handler %s failed on %s %s",
                        handler_name(handler),
                        event.event_type,
                        event.event_id,
                        exc_info=error,
                    )

    def get_stats(self) -> dict[str, int]:
        return dict(self._stats)

    def get_background_task_count(self) -> int:
        return len(self._background)

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Wait for background publishing; cancel what is unfinished at the timeout."""
        pending = list(self._background)
        if not pending:
            return
        _done, unfinished = await asyncio.wait(pending, timeout=timeout)
        for task in unfinished:
            task.cancel()
        if unfinished:
            logger.warning("Cancelled %d background publish tasks at shutdown", len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)
