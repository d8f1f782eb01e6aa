"""The one task behind each subscription: read the store's commit-safe pages, hand events over.

Catch-up and live are the same loop. The store owns the order (`read_committed`), so a late
commit is never skipped and nothing is read twice; the bus and `wait_for_new_events` only wake
the loop when it has read everything. A failing store is retried from the same cursor forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from eventsource.exceptions import CorruptEventError
from eventsource.observability.attributes import (
    ATTR_EVENT_COUNT,
    ATTR_FROM_POSITION,
    ATTR_SUBSCRIPTION_NAME,
    ATTR_SUBSCRIPTION_STATE,
    ATTR_TO_POSITION,
)
from eventsource.observability.tracing import span, traces_live
from eventsource.subscriptions.config import CheckpointStrategy
from eventsource.subscriptions.exceptions import SubscriptionError
from eventsource.subscriptions.recovery import FailureRecovery, HaltSubscription
from eventsource.subscriptions.subscription import SubscriptionState
from eventsource.subscriptions.transactional import (
    accepts_count,
    accepts_cursor,
    commit_page,
    transactional,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from uuid import UUID

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

_OUTAGE_FIRST_DELAY = 0.1
_OUTAGE_MAX_DELAY = 5.0
_LAG_REFRESH_SECONDS = 1.0
_DLQ_RETRY_DELAY = 1.0


class SubscriptionReader:
    """Runs one subscription: start position, pages, filtering, checkpoints, errors."""

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
        tracer: Any = None,
    ) -> None:
        self.sub = subscription
        self.store = store
        self.checkpoints = checkpoints
        self.dlq = dlq
        self.errors = errors
        self.error_config = error_config
        self.save_cursor = save_cursor
        self.poll_interval = poll_interval
        self.tracer = tracer
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
        self.checkpoints_saved = 0
        self.events_drained = 0
        self.page: list[StoredEvent] = []
        self.index = 0
        self.page_cursor: str | None = None
        self.last_read: StoredEvent | None = None
        self.saved: tuple[int, str | None] = (-1, None)
        self.counted = 0  # `sub.events_processed` when the checkpoint row last counted them
        self.checkpointed_at = time.monotonic()
        self._lag_at = 0.0
        self._outages = 0
        self._recovery = FailureRecovery(
            subscription, errors, error_config, dlq, self._sleep, lambda: self.stop_requested
        )
        self._recover_event = self._recovery.recover
        # A subscriber committing pages with its checkpoint keeps the subscription's checkpoint
        # in its own repository, under its projection name (the manager checks the name).
        self.committer = transactional(subscription.subscriber)
        if self.committer is not None:
            self.checkpoints = self.committer.checkpoint_repo
            self.save_cursor = accepts_cursor(self.checkpoints.save_position)
        self.save_count = accepts_count(self.checkpoints.save_position)
        self._types: set[type[DomainEvent]] | None = None
        self._type_names: set[str] = set()
        self._aggregates: frozenset[str] | None = None
        self._accepted: dict[type[DomainEvent], bool] = {}
        self._configure_filter()

    # -- setup ----------------------------------------------------------------------------

    def _configure_filter(self) -> None:
        config = self.sub.config
        types = config.event_types
        if types is None:
            types = tuple(self.sub.subscriber.subscribed_to())
        # An empty list means "every event", as for `AsyncEventHandler.event_types()`.
        self._types = set(types) if types else None
        for cls in types or ():
            field = getattr(cls, "model_fields", {}).get("event_type")
            if field is not None and isinstance(field.default, str):
                self._type_names.add(field.default)
        self._aggregates = frozenset(config.aggregate_types) if config.aggregate_types else None

    def wants(self, stored: StoredEvent) -> bool:
        event = stored.event
        if self._types is not None:
            kind = type(event)
            accepted = self._accepted.get(kind)
            if accepted is None:
                accepted = self._accepted[kind] = (
                    issubclass(kind, tuple(self._types)) or event.event_type in self._type_names
                )
            if not accepted:
                return False
        return self._aggregates is None or stored.stream_id.partition(":")[2] in self._aggregates

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
            position = await self.checkpoints.get_position(self.sub.name) or 0
            get_cursor = getattr(self.checkpoints, "get_cursor", None)
            saved = await get_cursor(self.sub.name) if get_cursor is not None else None
            if saved:
                cursor = saved
            elif position:
                cursor = await store.cursor_for_position(position)
            self.saved = (position, saved) if position else (-1, None)
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
                    await self._outage(exc)
            if not self.stop_requested and not self.pause_requested:
                sub.state = SubscriptionState.CATCHING_UP
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
                    await self._refresh_lag()
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
        self.sub.state = SubscriptionState.ERROR
        self.sub.last_error = error
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
            return await self._read(self.cursor, limit)
        except CorruptEventError as corrupt:
            return await self._unreadable(corrupt)

    async def _read(self, after: str | None, limit: int) -> CommittedPage | None:
        """A page after `after`, or None after recording an outage (the caller retries).

        A row the store cannot read raises `CorruptEventError` (with the readable events
        before it and a cursor past it): the store answered, the caller decides.
        """
        try:
            page = await self.store.read_committed(after, limit)
        except CorruptEventError as exc:
            if exc.page is None or exc.cursor is None:  # a store that cannot say where it is
                await self._outage(exc)
                return None
            self._store_answered()
            raise
        except Exception as exc:
            await self._outage(exc)
            return None
        self._store_answered()
        return page

    def _store_answered(self) -> None:
        if not self.sub.store_reachable:
            logger.info("Subscription %s: the event store is reachable again", self.sub.name)
            self.sub.store_reachable = True
            self._outages = 0

    async def _unreadable(self, corrupt: CorruptEventError) -> CommittedPage | None:
        """A row the store cannot turn into an event: first the readable events before it (the
        page returned), then the row itself per `on_corrupt_event` (None: read again).

        The cursor and the checkpoint move past the row only once it is dead-lettered; while
        the DLQ write fails, the row is read again after a pause.
        """
        page, cursor, position = corrupt.page, corrupt.cursor, corrupt.position
        assert page is not None  # both checked by `_read`
        assert cursor is not None
        if page.events:
            return page
        sub = self.sub
        await self._refresh_lag(force=True)  # counts the row and every one after it
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
        await self._save_checkpoint(
            sub.last_processed_position, event_id, corrupt.event_type, cursor
        )
        return None

    async def cursor_after(self, cursor: str | None, stored: StoredEvent) -> str | None:
        """The store cursor just after `stored`, the next event after `cursor`; None if the
        reader is stopping while the store is down."""
        while not self.stop_requested:
            page = await self._read(cursor, 1)
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
        while not self.stop_requested:
            try:
                return await self.store.cursor_for_position(position)
            except Exception as exc:
                await self._outage(exc)
        return None

    async def recover(
        self, stored: StoredEvent, error: Exception, again: Callable[[], Awaitable[None]]
    ) -> bool:
        """Retry a failed `again()` per the subscription's config, else dead-letter it."""
        return await self._recovery.recover(stored, error, again)

    async def _outage(self, exc: Exception) -> None:
        """Record a store failure and back off (capped); the caller retries the same read."""
        sub = self.sub
        sub.store_reachable = False
        sub.last_error = exc
        self.under_way.set()  # it keeps trying on its own: nothing for start() to wait for
        delay = min(_OUTAGE_FIRST_DELAY * 2**self._outages, _OUTAGE_MAX_DELAY)
        self._outages += 1
        logger.warning(
            "Subscription %s cannot read the event store (%s: %s); retrying in %.1fs",
            sub.name, type(exc).__name__, exc, delay,
        )
        await self._sleep(delay)

    async def _refresh_lag(self, force: bool = False) -> None:
        """Measure how many committed events lie past the cursor (at most once a second)."""
        now = time.monotonic()
        if now - self._lag_at < _LAG_REFRESH_SECONDS and not force:
            return
        self._lag_at = now
        try:
            behind = await self.store.committed_lag(self.cursor)
        except Exception:
            # Informative only: a real outage shows at the next read.
            logger.debug("Subscription %s: lag unavailable", self.sub.name, exc_info=True)
        else:
            self.sub.max_known_position = self.sub.last_processed_position + behind

    async def _idle(self, cursor: str) -> None:
        """Everything committed has been read: go live, checkpoint if due, wait for a wake-up."""
        sub = self.sub
        self.cursor = cursor
        sub.caught_up = True
        sub.max_known_position = sub.last_processed_position
        if sub.state is SubscriptionState.CATCHING_UP and not self.pause_requested:
            sub.state = SubscriptionState.LIVE
            logger.info("Subscription %s is live at position %d", sub.name,
                        sub.last_processed_position)
        if sub.config.checkpoint_strategy is CheckpointStrategy.PERIODIC:
            await self._periodic_checkpoint()
        if self.under_way.is_set() or await self._nothing_held_back():
            self.under_way.set()
        if self.wake.is_set() or self.stop_requested:
            return
        try:
            async with asyncio.timeout(self.poll_interval):
                await self.wake.wait()
        except TimeoutError:
            pass

    async def _nothing_held_back(self) -> bool:
        """False while events stored before the start wait behind an open transaction
        (PostgreSQL's commit-safe order): `start()` waits for them rather than returning with
        nothing handled. Asked only until the reader is under way."""
        try:
            return await self.store.committed_lag(self.cursor) == 0
        except Exception:
            return True  # the next read reports the outage

    async def _process_page(self) -> None:
        handle = (
            self._handle_events if self.committer is None
            else lambda: commit_page(self, self.committer)  # type: ignore[arg-type]
        )
        if self.tracer is None or not traces_live():
            await handle()
        else:
            # Each subscriber's `handle` (e.g. `eventsource.projection.handle`) nests in here.
            with span(self.tracer, "eventsource.subscription.batch",
                      {ATTR_SUBSCRIPTION_NAME: self.sub.name,
                       ATTR_SUBSCRIPTION_STATE: self.sub.state.value,
                       ATTR_EVENT_COUNT: len(self.page) - self.index,
                       ATTR_FROM_POSITION: self.page[self.index].global_position,
                       ATTR_TO_POSITION: self.page[-1].global_position}):
                await handle()
        if self.index >= len(self.page):
            self.cursor = self.page_cursor
            self.page = []
            self.index = 0
            await self._end_of_page()

    async def _handle_events(self) -> None:
        """Hand the page's events over in order: the hot path, kept lean on purpose."""
        sub, events = self.sub, self.page
        n, i = len(events), self.index
        handle = sub.handler
        wanted = None if self._types is None and self._aggregates is None else self.wants
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
                    while i < n and not self.pause_requested:
                        stored = events[i]
                        if wanted is None or wanted(stored):
                            now = clock()
                            if now + timeout > deadline:
                                deadline = now + timeout + slack
                                guard.reschedule(deadline)
                            event = stored.event
                            try:
                                await handle(event)
                                ok = True
                            except Exception as exc:
                                guard.reschedule(None)
                                deadline = 0.0
                                ok = await self._recover_event(stored, exc)
                            if ok:
                                sub.events_processed += 1
                                sub.last_event = event
                        position = stored.global_position
                        if position > sub.last_processed_position:  # noqa: PLR1730 - max() is slower
                            sub.last_processed_position = position
                        self.last_read = stored
                        i += 1
                        self.index = i
                        if self.stop_requested:
                            self.events_drained += 1
                        if every_event:
                            await self.checkpoint(stored, self.page_cursor if i == n else None)
            except TimeoutError:
                # The page timer fired: events[i] overran processing_timeout.
                await self._timed_out(events[i], timeout)
                i += 1
                self.index = i
            else:
                return

    async def _timed_out(self, stored: StoredEvent, timeout: float) -> None:
        sub = self.sub
        error = TimeoutError(
            f"Handling {stored.event_type} {stored.event_id} took longer than "
            f"processing_timeout={timeout}s"
        )
        if await self._recover_event(stored, error):
            sub.events_processed += 1
            sub.last_event = stored.event
        sub.last_processed_position = max(sub.last_processed_position, stored.global_position)
        self.last_read = stored

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
        interval = self.sub.config.checkpoint_interval_seconds
        if time.monotonic() - self.checkpointed_at >= interval:
            await self.checkpoint(self.last_read, self.cursor if not self.page else None)

    async def checkpoint(self, stored: StoredEvent | None, cursor: str | None) -> None:
        """Save the position of `stored` (and the cursor after it, when known); never backwards."""
        if stored is not None:
            await self._save_checkpoint(
                stored.global_position, stored.event_id, stored.event_type, cursor
            )

    async def _save_checkpoint(
        self, position: int, event_id: UUID, event_type: str, cursor: str | None
    ) -> None:
        saved_position, saved_cursor = self.saved
        # A known cursor is never replaced by "unknown" for the same position.
        if position < saved_position or (
            position == saved_position and cursor in (None, saved_cursor)
        ):
            return
        name = self.sub.name
        processed = self.sub.events_processed
        extra: dict[str, Any] = {}
        if self.save_cursor:
            extra["cursor"] = cursor
        if self.save_count:  # the row counts events handed over, not checkpoint writes
            extra["count"] = processed - self.counted
        try:
            await self.checkpoints.save_position(name, position, event_id, event_type, **extra)
        except Exception as exc:
            self.sub.last_error = exc
            logger.warning("Subscription %s could not save its checkpoint: %s", name, exc)
            return
        self.saved = (position, cursor)
        self.counted = processed
        self.checkpointed_at = time.monotonic()
        self.checkpoints_saved += 1

    async def save_final_checkpoint(self) -> bool:
        """Save how far the subscription got (on stop); True if something was written."""
        before = self.checkpoints_saved
        cursor = self.cursor if self.index >= len(self.page) else None
        await self.checkpoint(self.last_read, cursor)
        return self.checkpoints_saved > before
