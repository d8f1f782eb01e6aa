"""Pages committed together with the subscription checkpoint, for subscribers that can.

A subscriber that writes its read model in a database transaction (a `DatabaseProjection`
whose checkpoint repository writes through a connection) gets each page in one call, and the
page's position and store cursor commit in that same transaction. Its checkpoint row is then
the subscription's checkpoint: the row `projection_name` of the subscriber's own checkpoint
repository, and the subscription must carry that name. After a crash the manager resumes from
exactly the last committed transaction, so nothing is applied twice.

A subscriber may end a transaction before the page does (a `DatabaseProjection` that reached
its `max_transaction_seconds`); that transaction's checkpoint holds the position of its last
event, and the rest of the page goes into the next transaction.

When a page fails it is rolled back and handled again one event per transaction, each with
the cursor just after that event (read again from the store, whose commit-safe order is
stable), so the per-event retries and dead letters stay exact too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent
    from eventsource.repositories.checkpoint import CheckpointRepository
    from eventsource.stores.interface import StoredEvent
    from eventsource.subscriptions.reader import SubscriptionReader

__all__ = [
    "TransactionalSubscriber", "accepts_count", "accepts_cursor", "commit_page", "transactional"
]

logger = logging.getLogger("eventsource.subscriptions.manager")


@runtime_checkable
class TransactionalSubscriber(Protocol):
    """A subscriber that commits its read-model work and its checkpoint in one transaction."""

    @property
    def projection_name(self) -> str: ...

    @property
    def checkpoint_repo(self) -> CheckpointRepository: ...

    @property
    def commits_checkpoint(self) -> bool: ...

    async def commit_batch(
        self, events: Sequence[DomainEvent], *, position: int | None = None,
        cursor: str | None = None, positions: Sequence[int] | None = None,
    ) -> int:
        """Apply `events` (or the first ones, a count returned) and the checkpoint in one
        transaction; raise (rolled back) on error."""

    async def handle(
        self, event: DomainEvent, *, position: int | None = None, cursor: str | None = None
    ) -> None:
        """One event in one transaction with the checkpoint, with the subscriber's retries."""


def transactional(subscriber: object) -> TransactionalSubscriber | None:
    """`subscriber` if it can commit pages with the checkpoint, else None."""
    if isinstance(subscriber, TransactionalSubscriber) and subscriber.commits_checkpoint:
        return subscriber
    return None


def _accepts(save_position: Callable[..., Any], keyword: str) -> bool:
    try:
        params = inspect.signature(save_position).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in params)


def accepts_cursor(save_position: Callable[..., Any]) -> bool:
    """Whether a checkpoint repository can keep the store's cursor next to the position."""
    return _accepts(save_position, "cursor")


def accepts_count(save_position: Callable[..., Any]) -> bool:
    """Whether a checkpoint repository can add the events a save covers (`count`), not 1."""
    return _accepts(save_position, "count")


def _committed(reader: SubscriptionReader, stored: StoredEvent, cursor: str | None) -> None:
    """Book-keeping after `stored`'s checkpoint committed with the read model (which counted
    the events it applied)."""
    reader.saved = (stored.global_position, cursor)
    reader.counted = reader.sub.events_processed
    reader.checkpointed_at = time.monotonic()
    reader.checkpoints_saved += 1


async def commit_page(reader: SubscriptionReader, subscriber: TransactionalSubscriber) -> None:
    """Hand the rest of the reader's current page over in as few transactions as the
    subscriber takes, else one event at a time."""
    sub, page = reader.sub, reader.page
    last = page[-1]
    cut_at: int | None = None  # the position a transaction ended at before the page did
    while True:
        wanted = [i for i in range(reader.index, len(page)) if reader.wants(page[i])]
        if not wanted:
            break
        try:
            # A transaction that overruns the timeout is rolled back and retried event by event.
            async with asyncio.timeout(sub.config.processing_timeout):
                applied = await subscriber.commit_batch(
                    [page[i].event for i in wanted],
                    position=last.global_position, cursor=reader.page_cursor,
                    positions=[page[i].global_position for i in wanted],
                )
        except Exception as exc:
            logger.warning(
                "Subscription %s: a page of %d events failed (%s: %s); handling them one by one",
                sub.name, len(wanted), type(exc).__name__, exc,
            )
            if cut_at is None:
                await _one_by_one(reader, subscriber, reader.cursor)
                return
            cursor = await reader.cursor_at(cut_at)
            if cursor is not None:  # (None: stopping during a store outage)
                await _one_by_one(reader, subscriber, cursor)
            return
        end = wanted[applied - 1]
        sub.events_processed += applied
        sub.last_event = page[end].event
        if applied == len(wanted):
            _committed(reader, last, reader.page_cursor)
            break
        cut_at = page[end].global_position
        _committed(reader, page[end], None)
        _read_past(reader, end + 1)
    _read_past(reader, len(page))


def _read_past(reader: SubscriptionReader, end: int) -> None:
    """Move the reader past the page's events up to index `end`."""
    sub = reader.sub
    stored = reader.page[end - 1]
    sub.last_processed_position = max(sub.last_processed_position, stored.global_position)
    reader.last_read = stored
    if reader.stop_requested:
        reader.events_drained += end - reader.index
    reader.index = end


async def _one_by_one(
    reader: SubscriptionReader, subscriber: TransactionalSubscriber, cursor: str | None
) -> None:
    """From the reader's current event, which comes next after `cursor`: each event in its
    own transaction, checkpointed with the cursor just after it."""
    sub = reader.sub
    timeout = sub.config.processing_timeout
    while reader.index < len(reader.page):
        stored = reader.page[reader.index]
        after = await reader.cursor_after(cursor, stored)
        if after is None:  # stopping during a store outage: the page stays unfinished
            return
        if reader.wants(stored):

            async def attempt(stored: StoredEvent = stored, after: str = after) -> None:
                await subscriber.handle(stored.event, position=stored.global_position,
                                        cursor=after)

            try:
                async with asyncio.timeout(timeout):
                    await attempt()
                ok = True
            except Exception as exc:
                ok = await reader.recover(stored, exc, attempt)
            if ok:
                sub.events_processed += 1
                sub.last_event = stored.event
                _committed(reader, stored, after)
            else:
                _read_past(reader, reader.index + 1)
                await reader.checkpoint(stored, after)  # past the dead letter
                cursor = after
                continue
        _read_past(reader, reader.index + 1)
        cursor = after
