"""What `PostgreSQLEventStore.read_committed` keeps between calls: pages read ahead while a
reader catches up, and the re-check timer that wakes readers while committed events wait behind
the horizon. Cursors are `"<xid>:<position>"`.

Reading everything, commit-safely. Global positions (`id`) are handed out at insert, not at
commit, so a transaction holding a lower position can commit after a higher one is already
visible: a reader tailing `read_all(from_position=last seen)` can skip it for good. Every row
therefore records its writing transaction (`tx_id`), and `read_committed` delivers rows in
`(tx_id, id)` order, and only rows whose transaction is older than every transaction still
running (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`). No transaction can still add rows
below that horizon, so a reader that keeps passing back the last cursor receives every committed
event exactly once, without serialising writers. The cost: a tailing reader lags the oldest
open transaction of the whole PostgreSQL cluster (any database), so a session left idle in a
transaction stalls tailing until it ends; `committed_lag` shows how many events are held back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import UUID

from eventsource._sql.postgresql import Row

__all__ = ["NOT_MAX_ID", "PagesAhead", "cursor_of", "parse_cursor"]

NOT_MAX_ID = 2**63 - 1
_MAX_PREFETCHES = 8
_FIRST_RECHECK = 0.005
_MAX_RECHECK = 1.0

PageKey = tuple[int, int, int, UUID | None]  # (tx id, position, limit, tenant)


class PagesAhead:
    """Pages of `read_committed` fetched ahead (`fetch(*key)`), and waking readers (`wake()`)
    again while committed events wait behind the horizon."""

    def __init__(
        self,
        fetch: Callable[[int, int, int, UUID | None], Coroutine[Any, Any, list[Row]]],
        wake: Callable[[], None],
    ) -> None:
        self._fetch = fetch
        self._wake = wake
        self._pending: dict[PageKey, asyncio.Task[list[Row]]] = {}
        self._recheck = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def prefetch(self, tx_id: int, position: int, limit: int, tenant: UUID | None) -> None:
        """Start reading the page after a full one, so its round trip overlaps decoding.

        A page read earlier is still right: rows below an older horizon are exactly the first
        rows below a newer one (the order is by transaction first), and nothing can join them.
        """
        key = (tx_id, position, limit, tenant)  # a page is one tenant's (or everyone's)
        pending = self._pending
        if key in pending:
            return
        while len(pending) >= _MAX_PREFETCHES:  # readers that moved on: drop the oldest
            pending.pop(next(iter(pending))).cancel()
        pending[key] = asyncio.get_running_loop().create_task(self._fetch(*key))

    async def prefetched(
        self, tx_id: int, position: int, limit: int, tenant: UUID | None
    ) -> list[Row] | None:
        """The prefetched page for this cursor if it is a full one (else read afresh: whether
        the reader has caught up is decided on a new snapshot)."""
        task = self._pending.pop((tx_id, position, limit, tenant), None)
        if task is None:
            return None
        try:
            rows = await task
        except Exception:
            return None
        return rows if len(rows) == limit and rows[-1][0] is not None else None

    def caught_up(self, held_back: bool) -> None:
        """After a reader caught up: if committed events wait behind the horizon, wake readers
        again soon (backing off while it stays put), as whatever holds the horizon back need
        not be an append that notifies when it ends."""
        if not held_back:
            self._recheck = 0.0
            return
        if self._timer is not None:
            return
        self._recheck = min(self._recheck * 2 or _FIRST_RECHECK, _MAX_RECHECK)
        self._timer = asyncio.get_running_loop().call_later(self._recheck, self._due)

    def _due(self) -> None:
        self._timer = None
        self._wake()

    async def close(self) -> None:
        """Stop the timer and cancel the pages read ahead."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = list(self._pending.values())
        self._pending.clear()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def cursor_of(row: Row) -> str:
    """The commit-safe cursor just after a row of `read_committed`."""
    return f"{int(row[8])}:{row[0]}"


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    """`"<xid>:<position>"` as two ints; `None` or `""` is the start of the store."""
    if not cursor:
        return 0, 0
    tx_text, sep, position_text = cursor.partition(":")
    try:
        tx_id, position = int(tx_text), int(position_text)
    except ValueError:
        tx_id = position = -1
    if not sep or tx_id < 0 or position < 0:
        raise ValueError(f"Not a cursor of PostgreSQLEventStore: {cursor!r}")
    return tx_id, position
