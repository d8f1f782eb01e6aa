"""`OutboxRelay`: publishes the rows of a transactional outbox to an event bus.

A store with its outbox enabled writes one `event_outbox` row per stored event in the append's
transaction; the relay reads pending rows oldest first, rebuilds the events, publishes them and
marks the rows published. docs/outbox.md states the guarantees; in short:

* At least once. A row is marked published only after the bus accepted its event, so a relay
  that dies between the two publishes the event again when it (or another) resumes.
* Order per aggregate. Rows are handed to the bus in insertion order, and a row whose publish
  fails holds back every later row of its aggregate: in that pass, while it waits out its
  backoff, and, once it is marked `failed`, until an operator requeues (`requeue_failed`) or
  deletes it. Other aggregates carry on.
* One relay at a time. Each pass first makes sure the relay holds the outbox's relay lock
  (PostgreSQL: a session advisory lock; SQLite: a `flock` on a file next to the database); the
  others stand by and take over when the holder stops or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from uuid import UUID

from eventsource._attributes import ReadOnly
from eventsource._checks import at_least, greater_than
from eventsource._lifecycle import AsyncContext
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import CorruptEventError, EventBusError
from eventsource.personal.protection import PersonalData
from eventsource.repositories.outbox import (
    LocalRelayLock,
    OutboxEntry,
    OutboxRepository,
    OutboxStats,
    RelayLock,
    RelayOutbox,
)
from eventsource.stores.codec import decode_event
from eventsource.stores.interface import EventPublisher
from eventsource.stores.type_converter import DefaultTypeConverter, TypeConverter
from eventsource.subscriptions.retry import TRANSIENT_EXCEPTIONS, RetryConfig, calculate_backoff

__all__ = ["OutboxRelay", "RelayPassResult", "RelayStats"]

logger = logging.getLogger(__name__)

_Key = tuple[UUID, str]  # an aggregate: (aggregate_id, aggregate_type)
_Ready = list[tuple[OutboxEntry, DomainEvent]]
# Publish attempts that may fail, with nothing published, before the pass gives up: the bus
# looks down, and one timeout per aggregate would make a pass last for ages.
_ATTEMPTS_WHILE_DOWN = 3


@dataclass(frozen=True)
class RelayPassResult:
    """What one `run_once()` did."""

    leader: bool = True  # False: another relay holds the lock, this pass did nothing
    fetched: int = 0  # publishable rows read
    published: int = 0  # rows marked published
    failed_attempts: int = 0  # rows whose publish (or rebuild) failed in this pass
    marked_failed: int = 0  # rows that used up their retries and went to `failed`
    held: int = 0  # rows held back behind an earlier row of their aggregate
    bus_down: bool = False  # nothing went out, and the bus looks unreachable


@dataclass(frozen=True)
class RelayStats:
    """Counters of one relay since it was made."""

    passes: int = 0
    standby_passes: int = 0
    events_published: int = 0
    failed_attempts: int = 0
    rows_marked_failed: int = 0
    pass_errors: int = 0  # passes that raised (e.g. the database was unreachable)
    is_leader: bool = False
    last_error: str | None = None


class _PlainOutbox:
    """`RelayOutbox` over a repository with only the `OutboxRepository` methods: marks rows one
    by one, and holds back aggregates it marked failed itself (in memory, for its lifetime)."""

    def __init__(self, outbox: OutboxRepository) -> None:
        self._outbox = outbox
        self.poisoned: set[_Key] = set()

    async def get_publishable_events(self, limit: int = 100) -> list[OutboxEntry]:
        rows = await self._outbox.get_pending_events(limit)
        return [r for r in rows if (r.aggregate_id, r.aggregate_type) not in self.poisoned]

    async def mark_published_many(self, outbox_ids: Sequence[UUID]) -> int:
        for outbox_id in outbox_ids:
            await self._outbox.mark_published(outbox_id)
        return len(outbox_ids)

    def relay_lock(self) -> RelayLock:
        return LocalRelayLock(("outbox", self._outbox))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# Publish errors that say "the broker cannot be reached" rather than "this message is refused".
_TRANSIENT = (*TRANSIENT_EXCEPTIONS, EventBusError)


@dataclass(frozen=True)
class _Failure:
    row: OutboxEntry
    error: Exception

    @property
    def transient(self) -> bool:
        return isinstance(self.error, _TRANSIENT)

    def describe(self) -> str:
        return _describe(self.error)


class OutboxRelay(AsyncContext):
    """Publishes outbox rows to `bus` (any `EventBus`, or anything with `publish(events)`).

    Args:
        outbox: the outbox repository (bundled ones: in memory, SQLite, PostgreSQL).
        bus: where events go.
        event_registry: rebuilds events from their stored payloads (default registry if None).
        batch_size: rows per pass; a pass publishes them with one `publish` call and marks them
            with one statement.
        poll_interval: seconds between passes when the outbox is drained (a full batch is
            followed by the next pass at once).
        retry: backoff between attempts of a failing row (`initial_delay`, `max_delay`, ...);
            a row gets `1 + retry.max_retries` attempts, then is marked `failed`.
        cleanup_after_days: if set, the leader deletes rows published more than this many days
            ago, every `cleanup_interval` seconds.
        leader_lock: take the outbox's relay lock before each pass (leave True unless some
            other mechanism guarantees a single relay).
        personal_data: the store's `PersonalData`, when events carry marked fields: a pass
            fetches the keys of its rows in one query, and the bus gets them sealed again.
        lock: the leadership to take instead of the outbox's own relay lock, e.g. an
            `eventsource.scaling.LeaderLease` (a lease row with an epoch: no session lock,
            so it works behind PgBouncer in transaction mode).
    """

    def __init__(
        self,
        outbox: OutboxRepository,
        bus: EventPublisher,
        event_registry: EventRegistry | None = None,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        retry: RetryConfig | None = None,
        cleanup_after_days: int | None = None,
        cleanup_interval: float = 3600.0,
        leader_lock: bool = True,
        type_converter: TypeConverter | None = None,
        personal_data: PersonalData | None = None,
        lock: RelayLock | None = None,
    ) -> None:
        at_least("batch_size", batch_size, 1)
        greater_than("poll_interval", poll_interval, 0)
        if cleanup_after_days is not None:
            at_least("cleanup_after_days", cleanup_after_days, 0)
        greater_than("cleanup_interval", cleanup_interval, 0)
        self._repository = outbox
        self._outbox: RelayOutbox | _PlainOutbox = (
            outbox if isinstance(outbox, RelayOutbox) else _PlainOutbox(outbox)
        )
        self._bus = bus
        self._registry = event_registry
        self._personal = personal_data
        self._converter = type_converter or DefaultTypeConverter()
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry = retry or RetryConfig()
        self._cleanup_days = cleanup_after_days
        self._cleanup_interval = cleanup_interval
        self._next_cleanup = 0.0
        self._lock: RelayLock | None = lock or (self._outbox.relay_lock() if leader_lock else None)
        self._pass_lock = asyncio.Lock()
        self._not_before: dict[UUID, float] = {}  # row -> monotonic time of its next attempt
        self._down_passes = 0  # consecutive passes where the bus looked down
        self._stats = RelayStats()
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    outbox: ReadOnly[OutboxRepository] = ReadOnly("_repository")
    """The outbox repository the relay publishes from."""
    stats: ReadOnly[RelayStats] = ReadOnly("_stats")
    """The relay's running counters."""

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def is_leader(self) -> bool:
        return self._stats.is_leader

    async def get_stats(self) -> OutboxStats:
        """The outbox's row counts (`pending`, `published`, `failed`, ...)."""
        return await self._repository.get_stats()

    async def cleanup_published(self, days: int = 7) -> int:
        """Delete rows published more than `days` days ago; how many were deleted."""
        return await self._repository.cleanup_published(days)

    async def requeue_failed(self, outbox_id: UUID | None = None) -> int:
        """Make a failed row (every failed row if None) pending again, releasing the later rows
        of its aggregate; how many were requeued."""
        if isinstance(self._outbox, _PlainOutbox):
            raise TypeError(
                f"{type(self._repository).__name__} has no requeue_failed: set the row's status "
                "back to 'pending' in the repository itself"
            )
        return await self._outbox.requeue_failed(outbox_id)

    # -- one pass ------------------------------------------------------------------------------

    async def run_once(self) -> RelayPassResult:
        """One pass: take (or confirm) leadership, publish a batch, record the outcome."""
        async with self._pass_lock:
            try:
                result = await self._pass()
            except Exception as exc:
                self._count(pass_errors=1, last_error=_describe(exc))
                raise
        if result.leader:
            self._count(
                passes=1,
                events_published=result.published,
                failed_attempts=result.failed_attempts,
                rows_marked_failed=result.marked_failed,
            )
        else:
            self._count(standby_passes=1)
        return result

    def _count(self, last_error: str | None = None, **increments: int) -> None:
        stats = self._stats
        changes = {name: getattr(stats, name) + n for name, n in increments.items()}
        self._stats = replace(stats, last_error=last_error or stats.last_error, **changes)

    async def _pass(self) -> RelayPassResult:
        leader = self._lock is None or await self._lock.acquire()
        if leader != self._stats.is_leader:
            self._stats = replace(self._stats, is_leader=leader)
            logger.info("Outbox relay %s leadership", "took" if leader else "does not hold")
        if not leader:
            return RelayPassResult(leader=False)
        rows = await self._outbox.get_publishable_events(self._batch_size)
        keys = None if self._personal is None else await self._personal.keys_for_payloads(
            [(row.event_type, row.event_data.get("payload")) for row in rows], self._registry
        )
        with nullcontext() if keys is None else keys.active():  # opened, then sealed again
            ready, unreadable, held = self._select(rows)
            published, unsent, bus_down = await self._publish(ready)
        if published:
            await self._outbox.mark_published_many([row.id for row in published])
            for row in published:
                self._not_before.pop(row.id, None)
        attempted = {row.id for row in published}
        attempted |= {f.row.id for f in unsent} | {row.id for row, _ in unreadable}
        held += sum(1 for row, _ in ready if row.id not in attempted)
        self._down_passes = self._down_passes + 1 if bus_down else 0
        marked = 0
        for row, error in unreadable:
            marked += await self._failed_attempt(row, error, countable=True)
        for failure in unsent:
            counts = not (bus_down and failure.transient)
            marked += await self._failed_attempt(failure.row, failure.describe(), countable=counts)
        return RelayPassResult(
            fetched=len(rows),
            published=len(published),
            failed_attempts=len(unsent) + len(unreadable),
            marked_failed=marked,
            held=held,
            bus_down=bus_down,
        )

    def _select(self, rows: list[OutboxEntry]) -> tuple[_Ready, list[tuple[OutboxEntry, str]], int]:
        """Rows to publish now, with their events; rows that cannot become events; how many
        are held back (waiting out a backoff, or behind such a row of their aggregate)."""
        now = time.monotonic()
        if self._not_before:  # forget waits that are over (and rows another relay finished)
            self._not_before = {key: due for key, due in self._not_before.items() if due > now}
        blocked: set[_Key] = set()
        ready: _Ready = []
        unreadable: list[tuple[OutboxEntry, str]] = []
        held = 0
        for row in rows:
            key = (row.aggregate_id, row.aggregate_type)
            if key in blocked or self._not_before.get(row.id, 0.0) > now:
                blocked.add(key)
                held += 1
                continue
            try:
                event = decode_event(
                    row.event_type, row.event_data["payload"], self._registry, row.event_id,
                    self._converter,
                )
            except (CorruptEventError, KeyError, TypeError) as exc:
                unreadable.append((row, f"cannot rebuild the event: {_describe(exc)}"))
                blocked.add(key)
                continue
            ready.append((row, event))
        return ready, unreadable, held

    async def _publish(self, ready: _Ready) -> tuple[list[OutboxEntry], list[_Failure], bool]:
        """Publish in order: (published rows, failed rows, the bus looks down).

        The whole batch goes in one call. If that fails, aggregate by aggregate, oldest first;
        an aggregate that fails goes row by row up to its failing row, which holds back the
        rest of that aggregate. Rows published by a failed call are sent again (at least once).
        The bus looks down when nothing went out and a failure was a connection-like one: then
        the pass stops early (after a few connection-like failures in a row), and its failures
        do not count toward marking rows failed. A row the bus refuses for another reason
        holds back only its own aggregate: the pass goes on with the others.
        """
        if not ready:
            return [], [], False
        try:
            await self._bus.publish([event for _, event in ready])
        except Exception as exc:
            error = exc
        else:
            return [row for row, _ in ready], [], False
        groups: dict[_Key, _Ready] = {}
        for row, event in ready:
            groups.setdefault((row.aggregate_id, row.aggregate_type), []).append((row, event))
        published: list[OutboxEntry] = []
        failed: list[_Failure] = []
        outage_signs = int(isinstance(error, _TRANSIENT))  # connection-like failures so far
        for group in groups.values():
            if not published and outage_signs >= _ATTEMPTS_WHILE_DOWN:
                break
            if len(groups) > 1:  # with one aggregate the batch call above was this one
                try:
                    await self._bus.publish([event for _, event in group])
                except Exception as exc:
                    outage_signs += isinstance(exc, _TRANSIENT)
                    error = exc
                else:
                    published.extend(row for row, _ in group)
                    continue
                if len(group) == 1:
                    failed.append(_Failure(group[0][0], error))
                    continue
            for row, event in group:
                try:
                    await self._bus.publish([event])
                except Exception as exc:
                    outage_signs += isinstance(exc, _TRANSIENT)
                    failed.append(_Failure(row, exc))
                    break
                published.append(row)
        down = not published and any(f.transient for f in failed)
        return published, failed, down

    async def _failed_attempt(self, row: OutboxEntry, error: str, *, countable: bool) -> int:
        """Record a failed attempt: retry later, or (retries used up) mark the row failed.
        Connection-like failures while the bus looks down are recorded (retry_count, last_error)
        but never make a row `failed`: an outage must not poison every aggregate's next row."""
        failures = row.retry_count + 1
        await self._repository.increment_retry(row.id, error)
        if countable and failures > self._retry.max_retries:
            await self._repository.mark_failed(row.id, error)
            self._not_before.pop(row.id, None)
            if isinstance(self._outbox, _PlainOutbox):
                self._outbox.poisoned.add((row.aggregate_id, row.aggregate_type))
            logger.error(
                "Outbox row %s (event %s, %s of aggregate %s) failed %d times and is marked "
                "failed; later events of that aggregate wait until it is requeued: %s",
                row.id, row.event_id, row.event_type, row.aggregate_id, failures, error,
            )
            return 1
        self._not_before[row.id] = time.monotonic() + calculate_backoff(failures - 1, self._retry)
        logger.warning(
            "Publishing outbox row %s (event %s) failed (attempt %d): %s",
            row.id, row.event_id, failures, error,
        )
        return 0

    # -- running -----------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Run passes until `stop()`: at once after a full batch, else every `poll_interval`
        (longer while the bus or the database is down). Gives up leadership on the way out."""
        self._stop = stop = asyncio.Event()
        errors = 0
        try:
            while not stop.is_set():
                try:
                    result = await self.run_once()
                    await self._maybe_cleanup(result)
                    errors = 0
                except Exception:
                    logger.exception("Outbox relay pass failed; retrying")
                    errors += 1
                    delay = max(self._poll_interval, calculate_backoff(errors - 1, self._retry))
                else:
                    if result.published and result.fetched >= self._batch_size:
                        continue  # more waiting: no pause
                    delay = self._poll_interval
                    if result.bus_down:
                        backoff = calculate_backoff(self._down_passes - 1, self._retry)
                        delay = max(delay, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            await self._release()

    async def _maybe_cleanup(self, result: RelayPassResult) -> None:
        if self._cleanup_days is None or not result.leader:
            return
        now = time.monotonic()
        if now >= self._next_cleanup:
            self._next_cleanup = now + self._cleanup_interval
            removed = await self._repository.cleanup_published(self._cleanup_days)
            if removed:
                logger.info("Outbox relay removed %d published rows", removed)

    async def _release(self) -> None:
        if self._lock is not None:
            try:
                await self._lock.release()
            except Exception:  # a lost session or file releases the lock by itself
                logger.warning("Could not release the outbox relay lock", exc_info=True)
        self._stats = replace(self._stats, is_leader=False)

    async def start(self) -> None:
        """Run `run_forever()` in a background task (no-op if running)."""
        if self.is_running:
            return
        self._task = asyncio.get_running_loop().create_task(self.run_forever())
        await asyncio.sleep(0)  # let it start: `stop()` right after `start()` then works

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the pass in progress (cancelled after `timeout` s), stop, and give up
        leadership (also after passes run with `run_once()` alone)."""
        if self._stop is not None:
            self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        async with self._pass_lock:
            await self._release()

    async def _enter_context(self) -> None:
        await self.start()

    async def _exit_context(self) -> None:
        await self.stop()
