"""`PurgeJob`: physically deletes what retention hides, in short batches, guarded.

What it deletes, in batches across the streams with metadata (archived streams are kept
whole): events below a stream's cut (its `truncate_before`, or beyond its newest
`max_count`), events older than its `max_age`, every event of a tombstoned stream; then
snapshots that can no longer be used (taken before the cut, or all of a tombstoned stream's);
then published outbox rows. A live or
soft-deleted stream keeps its newest event, so the next append continues its versions.

Guards: an event is deleted only once every guarded subscription (its checkpoint, by name)
has read past it in the store's commit order, unless it was stored longer than `max_delay`
ago: then it is deleted anyway and the job logs an error naming the subscriptions.

One runner at a time (a lease row, renewed every batch); idempotent (a second run finds
nothing left); positions are never handed out again (see `Backend.keep_below`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsource._sql.retention import (
    DELETE_EVENTS,
    DELETE_OUTBOX,
    DELETE_SNAPSHOTS,
    LEASE,
    RELEASE,
    STREAMS,
)
from eventsource.retention._backend import Backend, backend_for
from eventsource.retention.exceptions import PurgeAlreadyRunningError, RetentionRuleError
from eventsource.stores.interface import EventStore

__all__ = ["PurgeJob", "PurgeReport"]

logger = logging.getLogger(__name__)

_LAST = 2**63 - 1
_LEASE = "purge"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one `PurgeJob.run` deleted."""

    events: int = 0
    """Events deleted (including `overdue`)."""
    overdue: int = 0
    """Of those, events a guarded subscription had not read yet (older than `max_delay`)."""
    snapshots: int = 0
    """Snapshots deleted."""
    outbox: int = 0
    """Published outbox rows deleted."""
    streams: int = 0
    """Streams with metadata that were looked at."""


class PurgeJob:
    """Deletes expired, truncated and tombstoned events of a SQLite or PostgreSQL store.

    `guarded` names subscriptions (their checkpoints in `checkpoints`) whose unread events
    must not be deleted; `max_delay` (None: never) is how long an event may wait for them.
    `batch_size` events are deleted per statement (each its own short transaction), so
    concurrent appends wait at most one batch. `clock` ages events (the wall clock by default).
    """

    def __init__(
        self,
        store: EventStore,
        *,
        checkpoints: Any = None,
        guarded: Sequence[str] = (),
        max_delay: timedelta | None = None,
        batch_size: int = 1000,
        clock: Callable[[], datetime] = _utcnow,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise RetentionRuleError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if max_delay is not None and (
            not isinstance(max_delay, timedelta) or max_delay < timedelta(0)
        ):
            raise RetentionRuleError(f"max_delay must be a timedelta >= 0, got {max_delay!r}")
        if isinstance(guarded, str):
            raise TypeError(f"guarded must be a sequence of names, got the str {guarded!r}")
        if guarded and checkpoints is None:
            raise RetentionRuleError("guarded subscriptions need the checkpoints repository")
        self._store = store
        self._db: Backend = backend_for(store)
        self._checkpoints = checkpoints
        self._guarded = tuple(guarded)
        self._max_delay = max_delay
        self._batch = batch_size
        self._clock = clock
        self._lease = lease
        self._holder = uuid.uuid4().hex

    async def run(self) -> PurgeReport:
        """Purge once; `PurgeAlreadyRunningError` if another runner holds the lease."""
        await self._acquire()
        try:
            return await self._purge()
        finally:
            await self._db.execute("purge lease", RELEASE, {"name": _LEASE, "holder": self._holder})

    async def _acquire(self) -> None:
        now = self._clock()
        taken = await self._db.execute("purge lease", LEASE, {
            "name": _LEASE, "holder": self._holder, "expires": self._db.time(now + self._lease),
            "now": self._db.time(now),
        })
        if not taken:
            raise PurgeAlreadyRunningError(
                "another purge runner holds the purge lease; try again when it has finished"
            )

    async def _guard(self) -> dict[str, object]:
        """The `{guard_*}` parameters: the least any guarded subscription has read."""
        if not self._guarded:
            return self._db.guard_values((_LAST, _LAST))
        keys = [self._db.guard(await self._cursor(name)) for name in self._guarded]
        return self._db.guard_values(min(keys))

    async def _cursor(self, name: str) -> str | None:
        get_cursor = getattr(self._checkpoints, "get_cursor", None)
        cursor: str | None = await get_cursor(name) if get_cursor is not None else None
        if cursor:
            return cursor
        position = await self._checkpoints.get_position(name)
        return None if not position else await self._store.cursor_for_position(position)

    async def _purge(self) -> PurgeReport:
        now = self._clock()
        values: dict[str, object] = {
            "now": self._db.time(now), "keep": await self._db.keep_below(),
            "batch": self._batch, **await self._guard(),
        }
        streams = (await self._db.fetch("purge", STREAMS, {}))[0][0]
        events = await self._batches(DELETE_EVENTS["processed"], values)
        overdue = 0
        if self._max_delay is not None:
            values["overdue"] = self._db.time(now - self._max_delay)
            overdue = await self._batches(DELETE_EVENTS["overdue"], values)
            if overdue:
                logger.error(
                    "Purge deleted %d events that guarded subscriptions %s had not processed: "
                    "they waited longer than max_delay=%s", overdue,
                    ", ".join(self._guarded), self._max_delay,
                )
        snapshots = 0
        if await self._db.has_table("snapshots"):
            snapshots = await self._batches(DELETE_SNAPSHOTS, {"batch": self._batch})
        outbox = 0
        if await self._db.has_table("event_outbox"):
            outbox = await self._batches(DELETE_OUTBOX, {"batch": self._batch})
        return PurgeReport(events + overdue, overdue, snapshots, outbox, int(streams))

    async def _batches(self, template: str, values: dict[str, object]) -> int:
        """Run a batched delete until a batch comes back short; renews the lease per batch."""
        total = 0
        while True:
            deleted = await self._db.execute("purge", template, values)
            total += deleted
            if deleted < self._batch:
                return total
            await self._acquire()

