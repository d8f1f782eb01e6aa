"""A reader's side of the event store: commit-safe pages and cursors, read through outages.

A failing store is retried from the same cursor until it answers or the reader stops; the
subscription shows the outage meanwhile (`store_reachable`, `last_error`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from eventsource.exceptions import CorruptEventError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from eventsource.stores.interface import CommittedPage, EventStore, StoredEvent
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["StoreFeed"]

logger = logging.getLogger("eventsource.subscriptions.manager")

_OUTAGE_FIRST_DELAY = 0.1
_OUTAGE_MAX_DELAY = 5.0
_LAG_REFRESH_SECONDS = 1.0


class StoreFeed:
    """Reads one subscription's pages and cursors from the store, riding out outages."""

    def __init__(
        self,
        subscription: Subscription,
        store: EventStore,
        sleep: Callable[[float], Awaitable[None]],
        stopping: Callable[[], bool],
        on_outage: Callable[[], None],
    ) -> None:
        self.sub = subscription
        self.store = store
        self._sleep = sleep
        self._stopping = stopping
        self._on_outage = on_outage
        self._outages = 0
        self._lag_at = 0.0

    async def read(self, after: str | None, limit: int) -> CommittedPage | None:
        """A page after `after`, or None after recording an outage (the caller retries).

        A row the store cannot read raises `CorruptEventError` (with the readable events
        before it and a cursor past it): the store answered, the caller decides.
        """
        try:
            page = await self.store.read_committed(after, limit)
        except CorruptEventError as exc:
            if exc.page is None or exc.cursor is None:  # a store that cannot say where it is
                await self.outage(exc)
                return None
            self._answered()
            raise
        except Exception as exc:
            await self.outage(exc)
            return None
        self._answered()
        return page

    def _answered(self) -> None:
        if not self.sub.store_reachable:
            logger.info("Subscription %s: the event store is reachable again", self.sub.name)
            self.sub.store_reachable = True
            self._outages = 0

    async def cursor_after(self, cursor: str | None, stored: StoredEvent) -> str | None:
        """The store cursor just after `stored`, the next event after `cursor`; None if the
        reader is stopping while the store is down."""
        while not self._stopping():
            page = await self.read(cursor, 1)
            if page is None:
                continue
            if not page.events or page.events[0].event_id != stored.event_id:
                # The commit-safe order never changes below a cursor once read.
                raise RuntimeError(
                    f"Subscription {self.sub.name}: re-reading after {cursor!r} did not return "
                    f"event {stored.event_id} again"
                )
            return page.cursor
        return None

    async def cursor_at(self, position: int) -> str | None:
        """The store cursor just after the event at global `position`; None if the reader is
        stopping while the store is down."""
        while not self._stopping():
            try:
                return await self.store.cursor_for_position(position)
            except Exception as exc:
                await self.outage(exc)
        return None

    async def outage(self, exc: Exception) -> None:
        """Record a store failure and back off (capped); the caller retries the same read."""
        sub = self.sub
        sub.store_reachable = False
        sub.last_error = exc
        self._on_outage()
        delay = min(_OUTAGE_FIRST_DELAY * 2**self._outages, _OUTAGE_MAX_DELAY)
        self._outages += 1
        logger.warning(
            "Subscription %s cannot read the event store (%s: %s); retrying in %.1fs",
            sub.name, type(exc).__name__, exc, delay,
        )
        await self._sleep(delay)

    async def refresh_lag(self, cursor: str | None, *, force: bool = False) -> None:
        """Measure how many committed events lie past `cursor` (at most once a second)."""
        now = time.monotonic()
        if now - self._lag_at < _LAG_REFRESH_SECONDS and not force:
            return
        self._lag_at = now
        try:
            behind = await self.store.committed_lag(cursor)
        except Exception:
            # Informative only: a real outage shows at the next read.
            logger.debug("Subscription %s: lag unavailable", self.sub.name, exc_info=True)
        else:
            self.sub.max_known_position = self.sub.last_processed_position + behind

    async def nothing_held_back(self, cursor: str | None) -> bool:
        """False while events stored before the start wait behind an open transaction
        (PostgreSQL's commit-safe order) past `cursor`."""
        try:
            return await self.store.committed_lag(cursor) == 0
        except Exception:
            return True  # the next read reports the outage
