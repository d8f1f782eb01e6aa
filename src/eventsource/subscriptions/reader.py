"""The one task behind each subscription: read the store's commit-safe pages, hand events over.

Catch-up and live are the same loop. The store owns the order (`read_committed`), so a late
commit is never skipped and nothing is read twice; the bus and `wait_for_new_events` only wake
the loop when it has read everything. A failing store is retried from the same cursor forever.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from eventsource.exceptions import CorruptEventError
from eventsource.observability.attributes import (
    ATTR_EVENT_COUNT,
    ATTR_FROM_POSITION,
    ATTR_SUBSCRIPTION_NAME,
    ATTR_SUBSCRIPTION_STATE,
    ATTR_TO_POSITION,
)
from eventsource.observability.tracing import spanned_method
from eventsource.subscriptions.checkpointing import Checkpointer, accepts_cursor
from eventsource.subscriptions.config import CheckpointStrategy
from eventsource.subscriptions.delivery import Delivery, deliver_each
from eventsource.subscriptions.exceptions import SubscriptionError
from eventsource.subscriptions.feed import StoreFeed
from eventsource.subscriptions.recovery import FailureRecovery, HaltSubscription
from eventsource.subscriptions.selection import EventSelection
from eventsource.subscriptions.subscription import SubscriptionState
from eventsource.subscriptions.transactional import TransactionalDelivery, transactional

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from eventsource.events.base import DomainEvent
    from eventsource.repositories.checkpoint import CheckpointRepository
    from eventsource.repositories.dlq import DLQRepository
    from eventsource.stores.interface import CommittedPage, EventStore, StoredEvent
    from eventsource.subscriptions.error_handling import (
        ErrorHandlingConfig,
        SubscriptionErrorHandler,
    )
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["SubscriptionReader"]

logger = logging.getLogger("eventsource.subscriptions.manager")

_DLQ_RETRY_DELAY = 1.0


def _batch_attributes(
    reader: SubscriptionReader, _args: tuple[object, ...], _kwargs: Mapping[str, object]
) -> dict[str, object]:
    page, index = reader.page, reader.index
    return {
        ATTR_SUBSCRIPTION_NAME: reader.sub.name,
        ATTR_SUBSCRIPTION_STATE: reader.sub.state.value,
        ATTR_EVENT_COUNT: len(page) - index,
        ATTR_FROM_POSITION: page[index].global_position,
        ATTR_TO_POSITION: page[-1].global_position,
    }


class SubscriptionReader:
    """Runs one subscription: start position, pages, filtering, checkpoints, errors.

    It alone moves its cursor and its place in the page (`advance`); a delivery strategy
    (`deliver_each`, or `TransactionalDelivery` for a subscriber committing pages with its
    checkpoint) hands the page over and reports each step to `advance`.
    """

    def __init__(
        self,
        subscription: Subscription,
        store: EventStore,
        checkpoints: CheckpointRepository,
        dlq: DLQRepository | None,
        errors: SubscriptionErrorHandler,
        error_config: ErrorHandlingConfig,
        *,
        save_cursor: bool,
        poll_interval: float,
        tracer: object | None = None,
    ) -> None:
        self.sub = subscription
        self.store = store
        self.poll_interval = poll_interval
        self._tracer = tracer  # read by `spanned_method`
        self._enable_tracing = tracer is not None
        self.wake = asyncio.Event()
        # Set once the first page (one event) is handed over, or there is none, the reader is
        # paused, the store is down, or the reader ended: what `SubscriptionManager.start()`
        # waits for.
        self.under_way = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stop_requested = False
        self.pause_requested = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._interrupt = asyncio.Event()
        self.cursor: str | None = None
        self.cursor_resolved = False
        self.events_drained = 0
        self.page: list[StoredEvent] = []
        self.index = 0
        self.page_cursor: str | None = None
        self.last_read: StoredEvent | None = None
        self.feed = StoreFeed(
            subscription, store, self._sleep, lambda: self.stop_requested, self.under_way.set
        )
        self._recovery = FailureRecovery(
            subscription, errors, error_config, dlq, self._sleep, lambda: self.stop_requested
        )
        # A subscriber committing pages with its checkpoint keeps the subscription's checkpoint
        # in its own repository, under its projection name (the manager checks the name).
        committer = transactional(subscription.subscriber)
        self._deliver: Delivery = deliver_each
        if committer is not None:
            self._deliver = TransactionalDelivery(committer)
            checkpoints = committer.checkpoint_repo
            save_cursor = accepts_cursor(checkpoints.save_position)
        self.checkpointer = Checkpointer(subscription, checkpoints, save_cursor=save_cursor)
        self.selection = EventSelection(subscription)
        self.wanted = self.selection.filter

    async def resolve_start(self) -> None:
        """Turn `config.start_from` into a store cursor and the position it stands for."""
        start = self.sub.config.start_from
        store = self.store
        position = 0
        cursor: str | None = None
        if start == "end":
            position = await store.get_global_position()
            cursor = await store.head_cursor()
        elif isinstance(start, int):
            position = start
            cursor = await store.cursor_for_position(start) if start else None
        elif start == "checkpoint":
            position, cursor = await self.checkpointer.load()
            if cursor is None and position:
                cursor = await store.cursor_for_position(position)
        self.cursor = cursor
        self.sub.last_processed_position = position
        self.sub.max_known_position = position
        self.cursor_resolved = True

    # -- control --------------------------------------------------------------------------

    def request_stop(self) -> None:
        self.stop_requested = True
        self.wake.set()
        self._resumed.set()
        self._interrupt.set()

    def abandon(self) -> None:
        """Hand nothing more over once the handler under way returns: `stop()` gave up
        waiting for this reader (its handler ignores cancellation)."""
        self.request_stop()
        self.pause_requested = True

    def pause(self) -> None:
        self.pause_requested = True
        self._resumed.clear()
        self.wake.set()

    def resume(self) -> None:
        self.pause_requested = False
        self._resumed.set()
        self.wake.set()

    @property
    def in_flight(self) -> int:
        """Events of the current page not handed over yet."""
        return len(self.page) - self.index

    async def _sleep(self, delay: float) -> None:
        """Sleep, cut short by a stop request."""
        try:
            async with asyncio.timeout(delay):
                await self._interrupt.wait()
        except TimeoutError:
            pass

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.under_way.set()  # ended, whichever way: `start()` waits no longer

    async def _run(self) -> None:
        sub = self.sub
        try:
            while not self.cursor_resolved and not self.stop_requested:
                try:
                    await self.resolve_start()
                except Exception as exc:
                    await self.feed.outage(exc)
            if not self.stop_requested and sub.state is SubscriptionState.STARTING:
                sub.transition_to(SubscriptionState.CATCHING_UP)
            while not self.stop_requested:
                if self.pause_requested:
                    self.under_way.set()
                    await self._resumed.wait()
                    continue
                if self.index < len(self.page):
                    await self._process_page()
                    continue
                self.wake.clear()
                page = await self._next_page()
                if page is None:
                    continue
                if page.events:
                    sub.caught_up = False
                    await self.feed.refresh_lag(self.cursor)
                    self.page, self.index, self.page_cursor = page.events, 0, page.cursor
                    await self._process_page()
                    self.under_way.set()
                else:
                    await self._idle(page.cursor)
        except HaltSubscription as halt:
            logger.exception("Subscription %s stopped after an error it may not skip", sub.name)
            await self._stop_in_error(halt.__cause__ or halt)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            # Nobody cancelled this task: a handler raised CancelledError itself. Ending quietly
            # would leave the subscription looking healthy while it reads nothing more.
            error = SubscriptionError(
                f"Subscription {sub.name} stopped: its handler raised CancelledError{self._at()} "
                "without the subscription being cancelled"
            )
            logger.exception("%s", error)
            await self._stop_in_error(error)

    async def _stop_in_error(self, error: BaseException) -> None:
        """End in ERROR (health unhealthy, not ready), checkpointed before the failed event."""
        self.sub.fail(error)
        await self.save_final_checkpoint()

    def _at(self) -> str:
        """` on <type> <id> at global position <n>`: the event being handed over, if any."""
        if self.index >= len(self.page):
            return ""
        stored = self.page[self.index]
        return (f" on {stored.event_type} {stored.event_id} at global position "
                f"{stored.global_position}")

    async def _next_page(self) -> CommittedPage | None:
        """The page after the cursor to hand over; None when the loop should read again.

        The first page holds one event, so `start()` returns as soon as the subscriber has
        handled (or failed on) its first event, without waiting for a whole page.
        """
        limit = self.sub.config.batch_size if self.under_way.is_set() else 1
        try:
            return await self.feed.read(self.cursor, limit)
        except CorruptEventError as corrupt:
            return await self._unreadable(corrupt)

    async def _unreadable(self, corrupt: CorruptEventError) -> CommittedPage | None:
        """A row the store cannot turn into an event: first the readable events before it (the
        page returned), then the row itself per `on_corrupt_event` (None: read again).

        The cursor and the checkpoint move past the row only once it is dead-lettered; while
        the DLQ write fails, the row is read again after a pause.
        """
        page, cursor, position = corrupt.page, corrupt.cursor, corrupt.position
        assert page is not None  # both checked by `StoreFeed.read`
        assert cursor is not None
        if page.events:
            return page
        sub = self.sub
        # Counts the row and every one after it.
        await self.feed.refresh_lag(self.cursor, force=True)
        try:
            event_id = await self._recovery.unreadable(corrupt)
        except HaltSubscription:
            raise
        except Exception as exc:
            sub.last_error = exc
            logger.warning(
                "Subscription %s could not dead-letter the unreadable row at global position "
                "%s (%s: %s); reading it again in %.1fs",
                sub.name, position, type(exc).__name__, exc, _DLQ_RETRY_DELAY,
            )
            await self._sleep(_DLQ_RETRY_DELAY)
            return None
        logger.info("Subscription %s dead-lettered the unreadable row at global position %s "
                    "and reads on past it", sub.name, position)
        if position is not None and position > sub.last_processed_position:
            sub.last_processed_position = position
        self.cursor = cursor
        await self.checkpointer.save(
            sub.last_processed_position, event_id, corrupt.event_type, cursor
        )
        return None

    async def _idle(self, cursor: str) -> None:
        """Everything committed has been read: go live, checkpoint if due, wait for a wake-up."""
        sub = self.sub
        self.cursor = cursor
        sub.caught_up = True
        sub.max_known_position = sub.last_processed_position
        if sub.state is SubscriptionState.CATCHING_UP and not self.pause_requested:
            sub.transition_to(SubscriptionState.LIVE)
            logger.info("Subscription %s is live at position %d", sub.name,
                        sub.last_processed_position)
        if sub.config.checkpoint_strategy is CheckpointStrategy.PERIODIC:
            await self._periodic_checkpoint()
        # Until the reader is under way, events stored before the start may wait behind an
        # open transaction: `start()` waits for them rather than return with nothing handled.
        if self.under_way.is_set() or await self.feed.nothing_held_back(self.cursor):
            self.under_way.set()
        if self.wake.is_set() or self.stop_requested:
            return
        try:
            async with asyncio.timeout(self.poll_interval):
                await self.wake.wait()
        except TimeoutError:
            pass

    async def _process_page(self) -> None:
        await self._deliver_page()
        if self.index >= len(self.page):
            self.cursor = self.page_cursor
            self.page = []
            self.index = 0
            await self._end_of_page()

    async def _deliver_page(self) -> None:
        # Each subscriber's `handle` (e.g. `eventsource.projection.handle`) nests in the span.
        await self._deliver(self)

    _deliver_page = spanned_method(
        _deliver_page, "eventsource.subscription.batch", _batch_attributes
    )

    def wants(self, stored: StoredEvent) -> bool:
        """Whether the subscriber takes `stored` (its event and aggregate types)."""
        return self.selection.wants(stored)

    def advance(
        self,
        end: int,
        last: DomainEvent | None = None,
        handled: int = 1,
        *,
        committed: bool = False,
        cursor: str | None = None,
    ) -> None:
        """Move past the page's events up to index `end`: the one step that moves the reader.

        `last` is the last of the `handled` events the subscriber took (None: it took none);
        `committed` says the subscriber saved the checkpoint at the event before `end` (with
        `cursor`) in its own transaction.
        """
        sub = self.sub
        stored = self.page[end - 1]
        if last is not None:
            sub.events_processed += handled
            sub.last_event = last
        position = stored.global_position
        if position > sub.last_processed_position:  # noqa: PLR1730 - max() is slower
            sub.last_processed_position = position
        self.last_read = stored
        if self.stop_requested:
            self.events_drained += end - self.index
        self.index = end
        if committed:
            self.checkpointer.committed(position, cursor)

    async def recover(
        self,
        stored: StoredEvent,
        error: Exception,
        again: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Retry a failed event per the subscription's config (by `again()`, else the handler);
        True if a retry worked, else it is reported and dead-lettered."""
        return await self._recovery.recover(stored, error, again)

    async def _end_of_page(self) -> None:
        sub = self.sub
        sub.touch()
        strategy = sub.config.checkpoint_strategy
        if strategy is CheckpointStrategy.EVERY_BATCH:
            await self.checkpoint(self.last_read, self.cursor)
        elif strategy is CheckpointStrategy.PERIODIC:
            await self._periodic_checkpoint()

    # -- checkpoints ----------------------------------------------------------------------

    async def _periodic_checkpoint(self) -> None:
        if self.checkpointer.due():
            await self.checkpoint(self.last_read, self.cursor if not self.page else None)

    async def checkpoint(self, stored: StoredEvent | None, cursor: str | None) -> None:
        """Save the position of `stored` (and the cursor after it, when known); never backwards.

        Not inside a split: its parts share their stored row's position, so a checkpoint before
        the last part would skip the rest on resume (the unit is delivered again instead)."""
        page, index = self.page, self.index
        if stored is not None and not (
            index < len(page) and page[index].global_position == stored.global_position
        ):
            await self.checkpointer.save(
                stored.global_position, stored.event_id, stored.event_type, cursor
            )

    async def save_final_checkpoint(self) -> bool:
        """Save how far the subscription got (on stop); True if something was written."""
        before = self.checkpointer.writes
        cursor = self.cursor if self.index >= len(self.page) else None
        await self.checkpoint(self.last_read, cursor)
        return self.checkpointer.writes > before
