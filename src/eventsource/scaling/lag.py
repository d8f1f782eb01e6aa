"""Lag you can alert on, per subscription and partition: events behind the head, age of the
oldest undelivered event, owner, epoch and last heartbeat.

`partition_lag` reads it from the lease rows and the store (any process can ask: an
operations endpoint, the CLI); a running `PartitionedWorker` keeps its own partitions' lag
fresh at each heartbeat (`PartitionedWorker.health()`) and reports it through OpenTelemetry
gauges (`PARTITION_LAG`, `PARTITION_OLDEST_AGE`, `PARTITION_HEARTBEAT_AGE`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsource._sql.leases import statements
from eventsource._sql.leases import text as _text
from eventsource.observability.attributes import ATTR_SUBSCRIPTION_NAME
from eventsource.observability.metrics import observe_gauge

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from eventsource.stores.interface import EventStore

__all__ = [
    "PARTITION_HEARTBEAT_AGE",
    "PARTITION_LAG",
    "PARTITION_OLDEST_AGE",
    "PartitionLag",
    "observe_partition_lag",
    "partition_lag",
]

PARTITION_LAG = "eventsource.partition.lag"
PARTITION_OLDEST_AGE = "eventsource.partition.oldest_undelivered_age"
PARTITION_HEARTBEAT_AGE = "eventsource.partition.heartbeat_age"


@dataclass(frozen=True)
class PartitionLag:
    """Where one partition of a subscription stands.

    `events_behind` counts every committed event past the partition's checkpoint (those of
    other partitions included: an upper bound, exact for the slowest partition);
    `oldest_undelivered_age` is the age in seconds of the first event past the checkpoint (0
    when none); `heartbeat_age` the seconds since its owner's last heartbeat (None: never
    held). Times come from the database clock.
    """

    subscription: str
    partition: int
    owner: str | None
    epoch: int
    position: int
    events_behind: int
    oldest_undelivered_age: float
    heartbeat_age: float | None

    def to_dict(self) -> dict[str, Any]:
        """As plain JSON-ready values."""
        return dict(vars(self))


async def partition_lag(
    engine: AsyncEngine, store: EventStore, subscription: str,
    partitions: set[int] | None = None,
) -> list[PartitionLag]:
    """The lag of `subscription`'s partitions (only `partitions` if given). The store is read
    once per distinct checkpoint (partitions that move together share one)."""
    sql = statements(engine.dialect.name)
    async with engine.connect() as conn:
        rows = (await conn.execute(_text(sql.lag_rows), {"s": subscription})).all()
    rows = [r for r in rows if partitions is None or int(r[0]) in partitions]
    behind: dict[str | None, tuple[int, float]] = {}
    for row in rows:
        cursor, now = row[4] or None, float(row[6])
        if cursor not in behind:
            count = await store.committed_lag(cursor)
            page = await store.read_committed(cursor, 1) if count else None
            oldest = page.events[0].stored_at.timestamp() if page and page.events else now
            behind[cursor] = (count, max(0.0, now - oldest))
    return [
        PartitionLag(
            subscription, int(p), owner, int(epoch), int(position), *behind[cursor or None],
            None if beat is None else max(0.0, float(now) - float(beat)),
        )
        for p, owner, epoch, beat, cursor, position, now in rows
    ]


def _readings(value: str, owner: Any) -> Iterator[tuple[float, dict[str, Any]]]:
    report: list[PartitionLag] = owner.lag_report
    for lag in report:
        reading = getattr(lag, value)
        if reading is not None:
            yield float(reading), {
                ATTR_SUBSCRIPTION_NAME: lag.subscription,
                "eventsource.partition": lag.partition,
                "eventsource.partition.owner": lag.owner or "",
                "eventsource.partition.epoch": lag.epoch,
            }


def observe_partition_lag(owner: Any) -> None:
    """Report `owner.lag_report` (a list of `PartitionLag`, kept fresh by its owner) through
    the partition gauges for as long as `owner` lives."""
    gauges = (
        (PARTITION_LAG, "events_behind", "{event}", "Committed events past the checkpoint"),
        (PARTITION_OLDEST_AGE, "oldest_undelivered_age", "s",
         "Age of the oldest event not yet delivered"),
        (PARTITION_HEARTBEAT_AGE, "heartbeat_age", "s", "Seconds since the owner's heartbeat"),
    )
    for name, value, unit, description in gauges:
        observe_gauge(name, owner, functools.partial(_readings, value),
                      unit=unit, description=description)
