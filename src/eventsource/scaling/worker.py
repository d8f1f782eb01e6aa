"""`PartitionedWorker`: one process's share of a partitioned subscription.

A worker registers the subscription (checking its partition count and handler), then keeps
a heartbeat: each beat renews its leases and its presence, counts the live workers, and
claims free or expired partitions up to its fair share, or marks the excess for release.
One commit-safe feed reader per worker reads pages from the lowest checkpoint among the
partitions it holds and hands each page's events of those partitions to the handler, in
page order (so per stream in order). After each page every partition the page covered,
idle ones included, moves its checkpoint to the page's cursor with one fenced statement
(`LeaseTable.fence`): for a transactional handler inside the handler's own transaction, so
a worker that lost a lease gets `LeaseLost` and its writes roll back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsource._lifecycle import AsyncContext
from eventsource.scaling.exceptions import LeaseLost, ScalingConfigurationError
from eventsource.scaling.lag import PartitionLag, observe_partition_lag, partition_lag
from eventsource.scaling.leases import Claimed, LeaseTable, fair_share
from eventsource.scaling.partitions import cursor_key, cursor_position, partition_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from eventsource.stores.interface import CommittedPage, EventStore, StoredEvent

__all__ = ["PartitionedWorker", "PlainHandler", "TransactionalHandler"]

logger = logging.getLogger("eventsource.scaling")

TransactionalHandler = Callable[["AsyncConnection", Sequence["StoredEvent"]], Awaitable[None]]
"""Writes a page's events in the transaction of the connection it gets (committed with the
partitions' checkpoints: exactly once)."""
PlainHandler = Callable[[Sequence["StoredEvent"]], Awaitable[None]]
"""Handles a page's events on its own (at least once: a page may come again)."""

_RETRY_DELAY = 0.2


@dataclass
class _Held:
    epoch: int
    cursor: str | None
    position: int


def _handler_name(handler: object) -> str:
    module = getattr(handler, "__module__", None) or type(handler).__module__
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{module}.{name}"


class PartitionedWorker(AsyncContext):
    """Runs `handler` on this worker's share of subscription `name`'s `partitions`.

    Args:
        store: the event store read (its commit-safe `read_committed` feed).
        engine: SQLAlchemy `AsyncEngine` of the database holding the lease rows (and, for a
            transactional handler, the read model: the same database).
        name: the subscription's name; every worker of it declares the same `partitions`
            and handler.
        handler: `handler(conn, events)` when `transactional` (the default), else
            `handler(events)`.
        partitions: P, fixed for the subscription's life (see `repartition`).
        lease_ttl: seconds a lease lasts without a heartbeat (database clock); must exceed
            `heartbeat`.
        heartbeat: seconds between heartbeats; live workers reach a fair share within two.
        batch_size: events per page read.
        poll_interval: longest wait for new events before reading again.
        concurrency: transactions a page is split into, each for a group of partitions, run
            at once (for handlers that wait on I/O; keep 1 on SQLite, whose writers queue).
        worker_id: this worker's identity in the lease rows (default: a fresh UUID).
        handler_name: what identifies the handler for the name-collision check (default: its
            module and qualified name).
    """

    def __init__(
        self,
        store: EventStore,
        engine: AsyncEngine,
        name: str,
        handler: TransactionalHandler | PlainHandler,
        *,
        partitions: int,
        transactional: bool = True,
        lease_ttl: float = 10.0,
        heartbeat: float = 3.0,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        concurrency: int = 1,
        worker_id: str | None = None,
        handler_name: str | None = None,
    ) -> None:
        if not isinstance(partitions, int) or partitions < 1:
            raise ScalingConfigurationError(f"partitions must be an int >= 1, got {partitions!r}")
        if not heartbeat > 0:
            raise ScalingConfigurationError(f"heartbeat must be > 0 seconds, got {heartbeat!r}")
        if not lease_ttl > heartbeat:
            raise ScalingConfigurationError(
                f"lease_ttl ({lease_ttl!r}s) must be longer than heartbeat ({heartbeat!r}s), "
                "or leases lapse between two heartbeats (3x the heartbeat is a good start)"
            )
        if batch_size < 1 or concurrency < 1 or not poll_interval > 0:
            raise ScalingConfigurationError(
                "batch_size and concurrency must be >= 1, and poll_interval > 0"
            )
        self.store = store
        self.name = name
        self.partitions = partitions
        self.transactional = transactional
        self.heartbeat_interval = heartbeat
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.worker_id = worker_id or uuid.uuid4().hex
        self.handler_name = handler_name or _handler_name(handler)
        self.leases = LeaseTable(engine, name, partitions, self.worker_id, lease_ttl)
        self._handler: Any = handler
        self._held: dict[int, _Held] = {}
        self._excess = 0
        self._valid_until = 0.0  # monotonic: the leases surely last until then
        self._stopping = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.events_delivered = 0
        self.pages = 0
        self.leases_lost = 0
        self.last_heartbeat: float | None = None  # time.time() of the last good heartbeat
        self.last_error: BaseException | None = None
        self.lag_report: list[PartitionLag] = []  # this worker's partitions, per heartbeat
        observe_partition_lag(self)

    @property
    def owned(self) -> dict[int, int]:
        """The partitions this worker holds, with their epochs."""
        return {p: h.epoch for p, h in sorted(self._held.items())}

    def health(self) -> dict[str, Any]:
        """The worker's state and its partitions' lag (as of the last heartbeat), JSON-ready."""
        return {
            "subscription": self.name, "worker": self.worker_id, "running": bool(self._tasks),
            "partitions": self.partitions, "owned": sorted(self._held),
            "events_delivered": self.events_delivered, "pages": self.pages,
            "leases_lost": self.leases_lost, "last_heartbeat": self.last_heartbeat,
            "last_error": None if self.last_error is None else repr(self.last_error),
            "lag": [lag.to_dict() for lag in self.lag_report],
        }

    async def refresh_lag(self) -> list[PartitionLag]:
        """Measure this worker's partitions' lag now (the heartbeat does it each time)."""
        self.lag_report = await partition_lag(
            self.leases.engine, self.store, self.name, set(self._held)
        )
        return self.lag_report

    async def start(self) -> None:
        """Register (typed errors for a wrong partition count or a name collision), take a
        first share, and start the heartbeat and the feed reader."""
        await self.leases.register(self.handler_name)
        await self._beat()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeats()), loop.create_task(self._read())]

    async def stop(self) -> None:
        """Finish the page in hand, release every partition and leave."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            reader, beats = self._tasks[1], self._tasks[0]
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            self._tasks = []
        self._held.clear()
        with contextlib.suppress(Exception):
            await self.leases.leave()

    async def _enter_context(self) -> None:
        await self.start()

    async def _exit_context(self) -> None:
        await self.stop()

    async def _heartbeats(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._beat()
                await self.refresh_lag()
            except Exception as exc:  # the database is down: the leases run out, fencing holds
                self.last_error = exc
                logger.warning("Subscription %s: heartbeat failed: %s", self.name, exc)

    async def _beat(self) -> None:
        started = time.monotonic()
        held, workers = await self.leases.heartbeat()
        self._valid_until = started + self.leases.ttl
        self.last_heartbeat = time.time()
        for p in [p for p, h in self._held.items() if held.get(p) != h.epoch]:
            logger.warning("Subscription %s: lost partition %d", self.name, p)
            del self._held[p]
        share = fair_share(self.partitions, workers, self.worker_id)
        self._excess = max(0, len(self._held) - share)
        if len(self._held) < share and not self._stopping:
            self._take(await self.leases.claim(share - len(self._held)))
        self._wake.set()

    def _take(self, claimed: list[Claimed]) -> None:
        for c in claimed:
            self._held[c.partition] = _Held(c.epoch, c.cursor, c.position)
        if claimed:
            logger.info("Subscription %s: worker %s claimed partitions %s", self.name,
                        self.worker_id, [c.partition for c in claimed])

    async def _release_excess(self) -> None:
        """At a batch boundary: hand the highest partitions over if holding too many."""
        excess, self._excess = self._excess, 0
        if excess <= 0:
            return
        gone = sorted(self._held)[-excess:]
        for p in gone:
            del self._held[p]
        await self.leases.release(gone)

    async def _read(self) -> None:
        while not self._stopping:
            try:
                await self._release_excess()
                await self._step()
            except Exception as exc:
                self.last_error = exc
                logger.warning("Subscription %s: page failed, retrying: %s: %s", self.name,
                               type(exc).__name__, exc)
                await asyncio.sleep(_RETRY_DELAY)

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_interval):
                await self._wake.wait()

    async def _step(self) -> None:
        held = dict(self._held)
        if not held or (not self.transactional and time.monotonic() > self._valid_until):
            await self._idle()  # nothing held, or (at least once) leases in doubt
            return
        start = min((h.cursor for h in held.values()), key=cursor_key)
        page = await self.store.read_committed(start, self.batch_size)
        if not page.events:
            await self.store.wait_for_new_events(self.poll_interval)
            return
        end = cursor_key(page.cursor)
        targets = {p: h for p, h in held.items() if cursor_key(h.cursor) < end}
        events = self._select(page, start, targets)
        await self._deliver(events, targets, page.cursor, page.events[-1].global_position)

    def _select(
        self, page: CommittedPage, start: str | None, targets: dict[int, _Held]
    ) -> list[StoredEvent]:
        """The page's events of `targets`, each partition from just after its checkpoint."""
        first: dict[int, int] = {}
        index: dict[int, int] | None = None
        start_key = cursor_key(start)
        for p, h in targets.items():
            if cursor_key(h.cursor) == start_key:
                first[p] = 0
                continue
            if index is None:
                index = {s.global_position: i for i, s in enumerate(page.events)}
            at = index.get(cursor_position(h.cursor))
            if at is None:
                raise RuntimeError(f"partition {p}'s checkpoint {h.cursor!r} is not in the page")
            first[p] = at + 1
        chosen = []
        for i, stored in enumerate(page.events):
            p = partition_of(stored.aggregate_id, self.partitions)
            if p in first and i >= first[p]:
                chosen.append(stored)
        return chosen

    async def _deliver(
        self, events: list[StoredEvent], targets: dict[int, _Held], cursor: str, position: int
    ) -> None:
        """The page in `concurrency` groups of partitions, each in its own transaction with
        its own fenced checkpoint (one group: one transaction for the whole page)."""
        groups = min(self.concurrency, len(targets))
        order = sorted(targets)
        parts = [order[i::groups] for i in range(groups)]
        of = {p: g for g, members in enumerate(parts) for p in members}
        batches: list[list[StoredEvent]] = [[] for _ in parts]
        for stored in events:
            batches[of[partition_of(stored.aggregate_id, self.partitions)]].append(stored)
        done = await asyncio.gather(*(
            self._deliver_group(batch, {p: targets[p].epoch for p in members}, cursor, position)
            for batch, members in zip(batches, parts, strict=True)
        ), return_exceptions=True)
        self.pages += 1
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # the other groups committed; this one's partitions stay behind

    async def _deliver_group(
        self, events: list[StoredEvent], epochs: dict[int, int], cursor: str, position: int
    ) -> None:
        leases = self.leases
        try:
            if self.transactional:
                async with leases.engine.begin() as conn:
                    if events:
                        await self._handler(conn, events)
                    await leases.fence(conn, epochs, cursor, position)
            else:
                if events:
                    await self._handler(events)
                async with leases.engine.begin() as conn:
                    await leases.fence(conn, epochs, cursor, position)
        except LeaseLost as lost:
            self.leases_lost += 1
            self.last_error = lost
            logger.warning("%s", lost)
            for p in lost.partitions:
                if p in self._held and self._held[p].epoch == epochs.get(p):
                    del self._held[p]
            return
        for p, epoch in epochs.items():
            mine = self._held.get(p)
            if mine is not None and mine.epoch == epoch:
                mine.cursor, mine.position = cursor, position
        self.events_delivered += len(events)
