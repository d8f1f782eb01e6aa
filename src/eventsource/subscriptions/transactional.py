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
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from eventsource.subscriptions.checkpointing import accepts_count, accepts_cursor

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent
    from eventsource.repositories.checkpoint import CheckpointRepository
    from eventsource.stores.interface import StoredEvent
    from eventsource.subscriptions.delivery import PageReader

__all__ = [
    "TransactionalDelivery",
    "TransactionalSubscriber",
    "accepts_count",
    "accepts_cursor",
    "transactional",
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


class TransactionalDelivery:
    """The delivery strategy (see `subscriptions.delivery`) for a `TransactionalSubscriber`."""

    def __init__(self, subscriber: TransactionalSubscriber) -> None:
        self.subscriber = subscriber

    async def __call__(self, reader: PageReader) -> None:
        """Hand the rest of the reader's current page over in as few transactions as the
        subscriber takes, else one event at a time."""
        sub, page = reader.sub, reader.page
        last = page[-1]
        cut_at: int | None = None  # the position a transaction ended at before the page did
        while reader.index < len(page):
            wanted = [i for i in range(reader.index, len(page)) if reader.wants(page[i])]
            if not wanted:
                reader.advance(len(page))
                return
            try:
                # A transaction overrunning the timeout is rolled back and retried one by one.
                async with asyncio.timeout(sub.config.processing_timeout):
                    applied = await self.subscriber.commit_batch(
                        [page[i].event for i in wanted],
                        position=last.global_position, cursor=reader.page_cursor,
                        positions=[page[i].global_position for i in wanted],
                    )
            except Exception as exc:
                logger.warning(
                    "Subscription %s: a page of %d events failed (%s: %s); handling them one "
                    "by one", sub.name, len(wanted), type(exc).__name__, exc,
                )
                cursor = reader.cursor if cut_at is None else await reader.feed.cursor_at(cut_at)
                if cut_at is None or cursor is not None:  # (None: stopping in a store outage)
                    await self._one_by_one(reader, cursor)
                return
            end = wanted[applied - 1]
            if applied == len(wanted):
                reader.advance(len(page), page[end].event, applied, committed=True,
                               cursor=reader.page_cursor)
                return
            cut_at = page[end].global_position
            reader.advance(end + 1, page[end].event, applied, committed=True)

    async def _one_by_one(self, reader: PageReader, cursor: str | None) -> None:
        """From the reader's current event, which comes next after `cursor`: each event in its
        own transaction, checkpointed with the cursor just after it."""
        timeout = reader.sub.config.processing_timeout
        while reader.index < len(reader.page):
            stored = reader.page[reader.index]
            after = await reader.feed.cursor_after(cursor, stored)
            if after is None:  # stopping during a store outage: the page stays unfinished
                return
            if await self._split_unit(reader, after, timeout):
                cursor = after
                continue
            if not reader.wants(stored):
                reader.advance(reader.index + 1)
            elif await self._handle_one(reader, stored, after, timeout):
                reader.advance(reader.index + 1, stored.event, committed=True, cursor=after)
            else:
                reader.advance(reader.index + 1)
                await reader.checkpoint(stored, after)  # past the dead letter
            cursor = after

    async def _split_unit(self, reader: PageReader, after: str, timeout: float) -> bool:
        """The parts a split made of one stored row, in one transaction with the checkpoint
        after the row (a unit: a crash never leaves it half applied); False when the current
        event is not such a part, or the unit failed (then it goes one by one as usual)."""
        page, start = reader.page, reader.index
        position = page[start].global_position
        end = start + 1
        while end < len(page) and page[end].global_position == position:
            end += 1
        if end - start < 2:
            return False
        wanted = [page[i].event for i in range(start, end) if reader.wants(page[i])]
        try:
            async with asyncio.timeout(timeout):
                if wanted:
                    await self.subscriber.commit_batch(wanted, position=position, cursor=after)
        except Exception as exc:
            logger.warning("Subscription %s: the %d parts of a split at position %d failed "
                           "together (%s); handling them one by one", reader.sub.name,
                           len(wanted), position, exc)
            return False
        reader.advance(end, wanted[-1] if wanted else None, len(wanted), committed=bool(wanted),
                       cursor=after)
        return True

    async def _handle_one(
        self, reader: PageReader, stored: StoredEvent, after: str, timeout: float
    ) -> bool:
        """Commit `stored` with the checkpoint at `after`; True if it (or a retry) committed."""

        async def attempt() -> None:
            await self.subscriber.handle(stored.event, position=stored.global_position,
                                         cursor=after)

        try:
            async with asyncio.timeout(timeout):
                await attempt()
        except Exception as exc:
            return await reader.recover(stored, exc, attempt)
        return True
