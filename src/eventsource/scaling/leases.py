"""Partition leases in the database: registering, heartbeats, fair shares, claiming, fencing.

One row per (subscription, partition) holds its owner, lease expiry (database clock), epoch
(incremented at every change of owner), last heartbeat and checkpoint (store cursor and
position). One row per live worker lets every worker count the others and work out its fair
share. Everything goes through an SQLAlchemy `AsyncEngine` (PostgreSQL or SQLite).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventsource._sql.leases import DDL, fence_statement, release_statement, statements
from eventsource._sql.leases import text as _text
from eventsource.scaling.exceptions import (
    LeaseLost,
    PartitionCountMismatchError,
    ScalingConfigurationError,
    SubscriptionNameCollisionError,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Claimed", "LeaseTable", "ensure_schema", "fair_share", "repartition"]


@dataclass(frozen=True)
class Claimed:
    """A partition a worker just claimed: its new epoch and where its checkpoint stands."""

    partition: int
    epoch: int
    cursor: str | None
    position: int


def fair_share(partitions: int, workers: list[str], me: str) -> int:
    """How many partitions `me` should hold among the live `workers` (sorted): an even split,
    the first ones in order taking one more when it does not divide."""
    if me not in workers:
        workers = sorted([*workers, me])
    base, extra = divmod(partitions, len(workers))
    return base + (1 if workers.index(me) < extra else 0)


async def ensure_schema(engine: AsyncEngine) -> None:
    """Create the lease tables if missing (several processes may race to do it)."""
    for attempt in range(5):
        try:
            async with engine.begin() as conn:
                for ddl in DDL:
                    await conn.execute(_text(ddl))
        except Exception:  # two creators at once: one wins, the other retries and sees it
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
        else:
            return


class LeaseTable:
    """The lease rows of one subscription, as seen by one worker (`owner`)."""

    def __init__(
        self, engine: AsyncEngine, subscription: str, partitions: int, owner: str, ttl: float
    ) -> None:
        self.engine = engine
        self.subscription = subscription
        self.partitions = partitions
        self.owner = owner
        self.ttl = ttl
        self.sql = statements(engine.dialect.name)

    def _params(self, **extra: object) -> dict[str, object]:
        return {"s": self.subscription, "o": self.owner, "ttl": self.ttl, **extra}

    async def register(self, handler: str) -> None:
        """Create the subscription's rows, or check that this worker agrees with them."""
        await ensure_schema(self.engine)
        async with self.engine.begin() as conn:
            await conn.execute(
                _text(self.sql.register), {"s": self.subscription, "p": self.partitions,
                                           "h": handler},
            )
            row = (await conn.execute(_text(self.sql.registered),
                                      {"s": self.subscription})).one()
            if row[0] != self.partitions:
                raise PartitionCountMismatchError(
                    f"Subscription {self.subscription!r} has {row[0]} partitions; this worker "
                    f"declares {self.partitions} (repartition explicitly with `repartition`)"
                )
            if row[1] != handler:
                raise SubscriptionNameCollisionError(
                    f"Subscription name {self.subscription!r} is taken by handler {row[1]!r}; "
                    f"this worker runs {handler!r} under it: give each its own name"
                )
            await conn.execute(
                _text(self.sql.add_partition),
                [{"s": self.subscription, "n": n} for n in range(self.partitions)],
            )

    async def heartbeat(self) -> tuple[dict[int, int], list[str]]:
        """Renew this worker's leases and its presence, in one transaction: the partitions
        still held (partition -> epoch), and the live workers (sorted)."""
        async with self.engine.begin() as conn:
            held = {
                int(p): int(e)
                for p, e in (await conn.execute(_text(self.sql.renew), self._params())).all()
            }
            await conn.execute(_text(self.sql.beat), self._params())
            await conn.execute(_text(self.sql.forget_dead), self._params())
            workers = [
                str(w) for (w,) in
                (await conn.execute(_text(self.sql.live_workers), self._params())).all()
            ]
        return held, workers

    async def claim(self, count: int) -> list[Claimed]:
        """Take up to `count` free or expired partitions (epoch + 1 each)."""
        if count <= 0:
            return []
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_text(self.sql.claim), self._params(n=count))).all()
        return [Claimed(int(p), int(e), c or None, int(pos)) for p, e, c, pos in rows]

    async def release(self, partitions: list[int]) -> None:
        """Give up `partitions` (at a batch boundary: their checkpoints are committed)."""
        if not partitions:
            return
        params = self._params(**{f"p{i}": p for i, p in enumerate(partitions)})
        async with self.engine.begin() as conn:
            await conn.execute(_text(release_statement(len(partitions))), params)

    async def leave(self) -> None:
        """Give up every partition and the worker's presence (a clean stop)."""
        async with self.engine.begin() as conn:
            await conn.execute(_text(self.sql.release_all), self._params())
            await conn.execute(_text(self.sql.leave), self._params())

    async def fence(
        self, conn: AsyncConnection, epochs: Mapping[int, int], cursor: str, position: int
    ) -> None:
        """In the caller's transaction: move the checkpoints of `epochs`' partitions to
        `cursor`, only if this worker still holds each at its epoch; else raise `LeaseLost`
        (the caller's transaction then rolls back)."""
        parts = sorted(epochs)
        params = self._params(c=cursor, pos=position)
        for i, p in enumerate(parts):
            params[f"p{i}"], params[f"e{i}"] = p, epochs[p]
        result = await conn.execute(_text(fence_statement(len(parts))), params)
        if result.rowcount != len(parts):
            rows = (await conn.execute(_text(self.sql.owners), self._params())).all()
            now = {int(p): (o, int(e)) for p, o, e in rows}
            lost = [p for p in parts if now.get(p) != (self.owner, epochs[p])]
            raise LeaseLost(self.subscription, lost or parts)


async def repartition(engine: AsyncEngine, subscription: str, partitions: int) -> None:
    """Change `subscription`'s partition count, in one transaction.

    Only at one common position: every partition's checkpoint must be the same cursor (run a
    single worker until it has caught up and stop it: its partitions then move together) and
    no worker may hold a lease. Otherwise `ScalingConfigurationError`, and nothing changes.
    """
    if not isinstance(partitions, int) or partitions < 1:
        raise ScalingConfigurationError(f"partitions must be an int >= 1, got {partitions!r}")
    sql = statements(engine.dialect.name)
    params = {"s": subscription}
    async with engine.begin() as conn:
        cursors, held = (await conn.execute(_text(sql.repartition_check), params)).one()
        if cursors != 1 or held:
            raise ScalingConfigurationError(
                f"Subscription {subscription!r} cannot be repartitioned now: its partitions "
                f"stand at {cursors} different positions and {held or 0} are held; stop every "
                "worker after one worker alone has caught up"
            )
        # Epochs carry on from the highest, so no fencing token is ever handed out twice.
        cursor, position, epoch = (
            await conn.execute(_text(sql.repartition_from), params)
        ).one()
        await conn.execute(_text(sql.repartition_clear), params)
        await conn.execute(_text(sql.repartition_insert), [
            {"s": subscription, "n": n, "e": epoch, "c": cursor, "pos": position}
            for n in range(partitions)
        ])
        await conn.execute(_text(sql.repartition_count), {"s": subscription, "p": partitions})
