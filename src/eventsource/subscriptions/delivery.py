"""Handing a page over to a subscriber, one event at a time.

A delivery strategy takes the reader's current page from `index` on and reports each step's
outcome (how far it got, which events the subscriber took, whether the subscriber committed the
checkpoint itself) to `PageReader.advance`, the one place the reader's position moves. This is
the strategy for ordinary subscribers; `subscriptions.transactional` is the one for subscribers
that commit pages with their checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from eventsource.subscriptions.config import CheckpointStrategy

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent
    from eventsource.stores.interface import StoredEvent
    from eventsource.subscriptions.feed import StoreFeed
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["Delivery", "PageReader", "deliver_each"]


class PageReader(Protocol):
    """What a delivery strategy sees of the reader: its page and the steps it may take."""

    sub: Subscription
    page: list[StoredEvent]
    index: int
    page_cursor: str | None
    cursor: str | None
    pause_requested: bool
    feed: StoreFeed
    wanted: Callable[[StoredEvent], bool] | None
    """The filter, None when every event is wanted."""

    def wants(self, stored: StoredEvent) -> bool:
        """Whether the subscriber takes `stored`."""

    def advance(
        self,
        end: int,
        last: DomainEvent | None = None,
        handled: int = 1,
        *,
        committed: bool = False,
        cursor: str | None = None,
    ) -> None:
        """Move past the page's events up to index `end`; `last` is the last of `handled`
        events the subscriber took, `committed` that it saved the checkpoint at the event
        before `end` with `cursor` itself."""

    async def checkpoint(self, stored: StoredEvent | None, cursor: str | None) -> None:
        """Save the checkpoint at `stored`."""

    async def recover(
        self,
        stored: StoredEvent,
        error: Exception,
        again: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Retry a failed event per the config (True if a retry worked), else dead-letter it."""


Delivery = Callable[[PageReader], Awaitable[None]]
"""A strategy: hands over the rest of the reader's page, or stops early on a pause."""


def _overran(stored: StoredEvent, timeout: float) -> TimeoutError:
    return TimeoutError(
        f"Handling {stored.event_type} {stored.event_id} took longer than "
        f"processing_timeout={timeout}s"
    )


async def deliver_each(reader: PageReader) -> None:
    """Hand the page's events over in order: the hot path, kept lean on purpose."""
    sub, events = reader.sub, reader.page
    n, i = len(events), reader.index
    handle = sub.handler
    wanted = reader.wanted
    advance = reader.advance
    every_event = sub.config.checkpoint_strategy is CheckpointStrategy.EVERY_EVENT
    timeout = sub.config.processing_timeout
    # One timer per page, re-armed only when less than `timeout` is left: arming a timer per
    # event would cost more than a no-op handler. Each handler thus gets between `timeout`
    # and `timeout + slack` seconds.
    slack = min(timeout * 0.1, 1.0)
    clock = asyncio.get_running_loop().time
    while i < n:
        try:
            async with asyncio.timeout(None) as guard:
                deadline = 0.0
                while i < n and not reader.pause_requested:
                    stored = events[i]
                    event: DomainEvent | None = None
                    if wanted is None or wanted(stored):
                        now = clock()
                        if now + timeout > deadline:
                            deadline = now + timeout + slack
                            guard.reschedule(deadline)
                        event = stored.event
                        try:
                            await handle(event)
                        except Exception as exc:
                            guard.reschedule(None)
                            deadline = 0.0
                            if not await reader.recover(stored, exc):
                                event = None
                    i += 1
                    advance(i, event)
                    if every_event:
                        await reader.checkpoint(stored, reader.page_cursor if i == n else None)
        except TimeoutError:
            # The page timer fired: events[i] overran processing_timeout.
            stored = events[i]
            taken = await reader.recover(stored, _overran(stored, timeout))
            i += 1
            advance(i, stored.event if taken else None)
        else:
            return
