"""Blue/green rebuilds of a database projection: build the next version side by side from the
first event while the current one serves, switch atomically once caught up, drop the old one.

Each version `v` of read model `name` is the partitioned subscription `name@v<v>` writing its
own tables (the handler knows where). `scaling_versions` holds which version is active;
readers ask `active_version(engine, name)`. `BlueGreenRebuild.run()` builds the new version
with a worker of its own, reporting `RebuildProgress`; once every partition is caught up it
switches the active version in one transaction, then calls `drop(conn, old_version)` and
forgets the old version's lease rows, so the old version's workers lose their leases: their
next commit raises `LeaseLost` and rolls back. Run the new version's workers in the fleet from
then on (same name, `partitions` and handler).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsource._sql.leases import statements
from eventsource._sql.leases import text as _text
from eventsource.scaling.lag import partition_lag
from eventsource.scaling.leases import ensure_schema
from eventsource.scaling.worker import PartitionedWorker

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from eventsource.scaling.worker import TransactionalHandler
    from eventsource.stores.interface import EventStore

__all__ = ["BlueGreenRebuild", "RebuildProgress", "active_version", "version_name"]

Drop = Callable[["AsyncConnection", int], Awaitable[None]]


def version_name(name: str, version: int) -> str:
    """The subscription name of `version` of read model `name`."""
    return f"{name}@v{version}"


async def active_version(engine: AsyncEngine, name: str) -> int | None:
    """The version of read model `name` that serves (None: none switched to yet)."""
    await ensure_schema(engine)
    async with engine.connect() as conn:
        row = (await conn.execute(_text(statements(engine.dialect.name).active_version),
                                  {"n": name})).first()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class RebuildProgress:
    """How far the new version is: its lowest checkpoint `position`, the store's committed
    events it still has to read at most (`events_behind`), and whether it switched."""

    name: str
    version: int
    position: int
    events_behind: int
    switched: bool = False


class BlueGreenRebuild:
    """Builds `version` of read model `name` with `handler` (transactional) from the first
    event, then switches to it and drops the serving version.

    Args:
        store: the event store, as for `PartitionedWorker`.
        engine: the database of the read model, as for `PartitionedWorker`.
        name: the read model; `version` must be new (its subscription starts from 0).
        handler: the new version's transactional handler.
        partitions: P of the new version (may differ from the old one's).
        drop: `drop(conn, old_version)`, in a transaction after the switch: drop the old tables.
        on_progress: called with a `RebuildProgress` every `poll` seconds.
        worker_options: passed on to the building `PartitionedWorker` (`lease_ttl`, ...).
    """

    def __init__(
        self, store: EventStore, engine: AsyncEngine, name: str, version: int,
        handler: TransactionalHandler, *, partitions: int, drop: Drop | None = None,
        on_progress: Callable[[RebuildProgress], None] | None = None, poll: float = 0.5,
        **worker_options: Any,
    ) -> None:
        self.store, self.engine, self.name, self.version = store, engine, name, version
        self.drop, self.on_progress, self.poll = drop, on_progress, poll
        self.worker = PartitionedWorker(
            store, engine, version_name(name, version), handler, partitions=partitions,
            **worker_options,
        )

    async def progress(self) -> RebuildProgress:
        """Where the new version stands now."""
        lags = await partition_lag(self.engine, self.store, self.worker.name)
        return RebuildProgress(
            self.name, self.version, min((lag.position for lag in lags), default=0),
            max((lag.events_behind for lag in lags), default=0),
        )

    async def run(self) -> RebuildProgress:
        """Build until caught up, switch, drop the old version; the final progress."""
        async with self.worker:
            while True:
                progress = await self.progress()
                if self.on_progress is not None:
                    self.on_progress(progress)
                if progress.events_behind == 0:  # every partition, whoever holds it
                    break
                await asyncio.sleep(self.poll)
            old = await self._switch()
        if old is not None and old != self.version:
            await self._drop(old)
        done = RebuildProgress(self.name, self.version, progress.position, 0, switched=True)
        if self.on_progress is not None:
            self.on_progress(done)
        return done

    async def _switch(self) -> int | None:
        sql = statements(self.engine.dialect.name)
        async with self.engine.begin() as conn:
            row = (await conn.execute(_text(sql.active_version), {"n": self.name})).first()
            await conn.execute(_text(sql.switch_version), {"n": self.name, "v": self.version})
        return None if row is None else int(row[0])

    async def _drop(self, old: int) -> None:
        sql = statements(self.engine.dialect.name)
        params = {"s": version_name(self.name, old)}
        async with self.engine.begin() as conn:
            if self.drop is not None:
                await self.drop(conn, old)
            await conn.execute(_text(sql.forget_partitions), params)
            await conn.execute(_text(sql.forget_subscription), params)
