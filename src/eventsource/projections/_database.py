"""Driver-free helpers of `DatabaseProjection`: when its transactions end, and checking what an
override of `_process_batch` returns."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

__all__ = ["TransactionClock", "applied_count"]

# SQLite's busy handler sleeps up to 100 ms between two tries for a lock: a writer waiting for
# the database gets it only if the lock stays free for longer than that.
_SQLITE_TURN = 0.15


class TransactionClock:
    """When a `DatabaseProjection` ends a transaction early, and when it lets other writers in.

    A transaction that applies several events ends, between two events, once it has lasted the
    projection's `max_transaction_seconds`, so it never holds locks for a whole slow page. On
    SQLite that is not enough: one connection writes at a time, and a writer waiting for the
    lock (an append) only polls for it, so a projection that commits and at once begins its
    next transaction can keep it out until its busy timeout fails it. There, once the
    projection's transactions have followed each other for `max_transaction_seconds`, the next
    one begins `_SQLITE_TURN` seconds after the last ended.
    """

    __slots__ = ("deadline", "ended", "limit", "run_started", "turn")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.turn = 0.0  # `_SQLITE_TURN` once a transaction has shown the database is SQLite
        self.run_started = self.ended = -math.inf
        self.deadline = math.inf

    async def wait_turn(self) -> None:
        """Before a transaction: leave the lock free for a turn if this run has lasted long."""
        now = time.monotonic()
        idle = now - self.ended
        if idle < self.turn and now - self.run_started >= self.limit:
            await asyncio.sleep(self.turn - idle)

    def begin(self, connection: Any, may_end_early: bool) -> None:
        now = time.monotonic()
        if getattr(getattr(connection, "dialect", None), "name", None) == "sqlite":
            self.turn = _SQLITE_TURN
        if now - self.ended >= self.turn:  # the lock was left free long enough: a new run
            self.run_started = now
        self.deadline = self.run_started + self.limit if may_end_early else math.inf

    def end(self) -> None:
        self.ended = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


def applied_count(projection: object, done: int | None, count: int) -> int:
    """How many events `_process_batch` applied, checked (an override may return anything)."""
    if done is None:
        return count
    if not 1 <= done <= count:
        raise ValueError(
            f"{type(projection).__name__}._process_batch returned {done!r} for {count} "
            "events: return how many it applied, from the first (at least 1), or None for all"
        )
    return done
