"""`LeaderLease`: one leader among many processes, through a lease row with an epoch.

No session advisory lock: every renewal is one short transaction, so it works behind
PgBouncer in transaction mode, and on SQLite. The row holds the owner, the expiry (database
clock) and an epoch, incremented whenever leadership is taken afresh; the epoch is a fencing
token: a leader's writes can check it (`fence`) in their own transaction.

A renewal or fencing check that fails (database unreachable, session terminated) makes the
holder stop acting at once (`is_leader` False); its next successful renewal takes leadership
again under a new epoch, so whatever it did before and after never shares an epoch. A holder
whose renewals stall stops acting when its lease could have run out (`ttl` after the last
renewal began).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from eventsource._sql.leases import statements
from eventsource._sql.leases import text as _text
from eventsource.scaling.exceptions import LeaseLost, ScalingConfigurationError
from eventsource.scaling.leases import ensure_schema

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["LeaderLease"]

logger = logging.getLogger("eventsource.scaling")


class LeaderLease:
    """Leadership of `name` among every `LeaderLease` of that name on one database.

    It is also a `RelayLock`: `OutboxRelay(..., lock=LeaderLease(engine, "outbox"))` elects
    its relay this way instead of with a session advisory lock.

    Args:
        engine: SQLAlchemy `AsyncEngine` (PostgreSQL or SQLite).
        name: what is led (one row per name).
        ttl: seconds leadership lasts without a renewal (database clock).
        heartbeat: seconds between renewals under `keep()`; must be shorter than `ttl`.
        owner: this candidate's identity (default: a fresh UUID).
    """

    def __init__(
        self, engine: AsyncEngine, name: str, *, ttl: float = 10.0, heartbeat: float = 3.0,
        owner: str | None = None,
    ) -> None:
        if not heartbeat > 0 or not ttl > heartbeat:
            raise ScalingConfigurationError(
                f"ttl ({ttl!r}s) must be longer than heartbeat ({heartbeat!r}s) > 0"
            )
        self.engine = engine
        self.name = name
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.owner = owner or uuid.uuid4().hex
        self._sql = statements(engine.dialect.name)
        self._epoch: int | None = None
        self._valid_until = 0.0
        self._ready = False
        self.losses = 0  # times leadership was held and then lost or given up

    @property
    def epoch(self) -> int | None:
        """The epoch of the current leadership (the fencing token), None when not leading."""
        return self._epoch if self.is_leader else None

    @property
    def is_leader(self) -> bool:
        """Whether this candidate leads now (and its lease surely has not run out)."""
        return self._epoch is not None and time.monotonic() < self._valid_until

    async def acquire(self) -> bool:
        """Take or renew leadership; True if this candidate leads now. Never waits for the
        holder: False at once when another leads."""
        started = time.monotonic()
        held = self.is_leader
        try:
            async with asyncio.timeout(self.heartbeat):  # a hung session counts as lost
                row = await self._renew(held)
        except Exception as exc:
            self._lose(f"renewal failed ({type(exc).__name__}: {exc})")
            return False
        if row is None:
            self._lose("another candidate leads")
            return False
        if not held or self._epoch != int(row[0]):
            logger.info("%s: %s leads, epoch %d", self.name, self.owner, int(row[0]))
        self._epoch, self._valid_until = int(row[0]), started + self.ttl
        return True

    async def _renew(self, held: bool) -> Any:
        if not self._ready:
            await ensure_schema(self.engine)
            async with self.engine.begin() as conn:
                await conn.execute(_text(self._sql.leader_row), {"n": self.name})
            self._ready = True
        async with self.engine.begin() as conn:
            return (await conn.execute(_text(self._sql.lead), {
                "n": self.name, "o": self.owner, "ttl": self.ttl, "held": held,
            })).first()

    def _lose(self, why: str) -> None:
        if self._epoch is not None:
            self.losses += 1
            logger.warning("%s: %s stops leading: %s", self.name, self.owner, why)
        self._epoch = None

    async def release(self) -> None:
        """Give leadership up (idempotent)."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return
        self.losses += 1
        with contextlib.suppress(Exception):  # a lost session: the lease runs out by itself
            async with self.engine.begin() as conn:
                await conn.execute(_text(self._sql.resign),
                                   {"n": self.name, "o": self.owner, "e": epoch})

    async def fence(self, conn: AsyncConnection) -> int:
        """In the caller's transaction: check that this candidate still leads at its epoch
        (locking the row until the transaction ends); the epoch, or `LeaseLost`."""
        epoch = self._epoch
        try:
            row = (await conn.execute(
                _text(self._sql.leader_fence), {"n": self.name, "o": self.owner, "e": epoch},
            )).first() if epoch is not None else None
        except Exception as exc:  # the session is gone: act no more until leading afresh
            self._lose(f"fencing check failed ({type(exc).__name__}: {exc})")
            raise
        if row is None:
            self._lose("fencing check failed")
            raise LeaseLost(self.name)
        return int(row[0])

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncConnection, int]]:
        """A transaction for the leader's work, fenced first: `(conn, epoch)`. Raises
        `LeaseLost` if this candidate does not lead at its epoch; if the session dies at any
        point of the transaction, the candidate stops acting until it leads afresh."""
        try:
            async with self.engine.begin() as conn:
                yield conn, await self.fence(conn)
        except Exception as exc:
            if getattr(exc, "connection_invalidated", False) or isinstance(exc, OSError):
                self._lose(f"its session ended ({type(exc).__name__}: {exc})")
            raise

    @contextlib.asynccontextmanager
    async def keep(self) -> AsyncIterator[LeaderLease]:
        """Renew (or try to take) leadership every `heartbeat` seconds while in the block;
        release it on the way out."""

        async def beat() -> None:
            while True:
                await self.acquire()
                await asyncio.sleep(self.heartbeat)

        task = asyncio.get_running_loop().create_task(beat())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.release()
