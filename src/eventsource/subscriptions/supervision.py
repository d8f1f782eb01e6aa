"""The manager's background duties: stopping readers gracefully and hearing store commits.

These work on what the manager hands them (its readers, a way to move its shutdown phase, its
store); the manager keeps its own state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Protocol

from eventsource.subscriptions.exceptions import SubscriptionError
from eventsource.subscriptions.shutdown import ShutdownPhase, ShutdownResult
from eventsource.subscriptions.subscription import SubscriptionState

if TYPE_CHECKING:
    from collections.abc import Callable

    from eventsource.stores.interface import EventStore
    from eventsource.subscriptions.reader import SubscriptionReader

__all__ = ["StoreWatched", "stop_readers", "watch_store"]

logger = logging.getLogger("eventsource.subscriptions.manager")

_MAX_WATCH_BACKOFF = 5.0
_STEP = 0.5
"""Seconds of a stop's timeout kept for each step after draining (cancelling the readers still
busy, then saving final checkpoints); a quarter of the timeout each when it is short."""
_MIN_WAIT = 0.01  # lets a cancellation land even when the timeout is spent


class StoreWatched(Protocol):
    """What `watch_store` needs of the manager."""

    event_store: EventStore
    poll_interval: float

    def _wake_readers(self) -> None: ...


async def stop_readers(
    readers: list[tuple[str, SubscriptionReader]],
    timeout: float,
    drain_timeout: float,
    enter_phase: Callable[[ShutdownPhase], None] | None = None,
    reason: str | None = None,
) -> ShutdownResult:
    """Stop `readers` (by name) within `timeout` seconds: drain their current page (at most
    `drain_timeout`), cancel those still busy, save final checkpoints. `enter_phase` (given
    when the manager stops all) is told each shutdown phase it goes through.

    A reader whose handler ignores cancellation is abandoned rather than waited for: it is
    named in the log and in the result, its subscription is left in ERROR, and it hands nothing
    more over once that handler returns.
    """
    started = time.monotonic()
    timeout = max(timeout, 0.0)
    deadline = started + timeout
    step = min(_STEP, timeout / 4)
    in_flight = sum(reader.in_flight for _, reader in readers)
    if enter_phase is not None:
        enter_phase(ShutdownPhase.DRAINING)
    for _, reader in readers:
        reader.request_stop()
    tasks = [reader.task for _, reader in readers if reader.task is not None]
    forced = False
    pending: set[asyncio.Task[None]] = set()
    if tasks:
        drain_end = min(started + max(drain_timeout, 0.0), deadline - 2 * step)
        _done, pending = await asyncio.wait(tasks, timeout=_until(drain_end))
        if pending:
            forced = True
            logger.warning("%d subscription(s) did not drain in time; cancelling", len(pending))
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=_until(deadline - step))
    abandoned = [(name, reader) for name, reader in readers if reader.task in pending]
    if abandoned:
        _abandon(abandoned, timeout)
    if enter_phase is not None:
        enter_phase(ShutdownPhase.CHECKPOINTING)
    saved, late = await _save_final_checkpoints(readers, deadline)
    for _, reader in readers:
        if reader.sub.state is not SubscriptionState.ERROR:
            reader.sub.transition_to(SubscriptionState.STOPPED)
    return ShutdownResult(
        phase=ShutdownPhase.FORCED if forced or late else ShutdownPhase.STOPPED,
        duration_seconds=time.monotonic() - started,
        subscriptions_stopped=len(readers),
        events_drained=sum(reader.events_drained for _, reader in readers),
        checkpoints_saved=saved,
        forced=forced or late,
        reason=reason,
        in_flight_at_start=in_flight,
        events_not_drained=sum(reader.in_flight for _, reader in readers),
        abandoned=tuple(name for name, _ in abandoned),
    )


def _until(moment: float) -> float:
    return max(moment - time.monotonic(), _MIN_WAIT)


def _abandon(readers: list[tuple[str, SubscriptionReader]], timeout: float) -> None:
    """Give up on readers that outlived their cancellation: say so loudly, keep them from
    handing over anything more, and leave their subscriptions in ERROR."""
    logger.error(
        "Subscription(s) %s did not stop within the %.1fs timeout: a handler ignores "
        "cancellation; abandoned, still running until that handler returns",
        ", ".join(name for name, _ in readers), timeout,
    )
    for name, reader in readers:
        reader.abandon()
        reader.sub.fail(SubscriptionError(
            f"Subscription {name} did not stop within the {timeout}s timeout (its handler "
            "ignores cancellation): abandoned while that handler runs"
        ))


async def _save_final_checkpoints(
    readers: list[tuple[str, SubscriptionReader]], deadline: float
) -> tuple[int, bool]:
    """Save every reader's final checkpoint, together, until `deadline`; returns how many were
    written and whether any was too late (those are cancelled and logged)."""
    saves = {
        asyncio.ensure_future(reader.save_final_checkpoint()): name for name, reader in readers
    }
    if not saves:
        return 0, False
    done, late = await asyncio.wait(saves, timeout=_until(deadline))
    for task in late:
        task.cancel()
        logger.warning("Subscription %s: final checkpoint timed out", saves[task])
    return sum(task.result() for task in done if task.exception() is None), bool(late)


async def watch_store(manager: StoreWatched) -> None:
    """Wake every reader when the store reports a commit (LISTEN/NOTIFY on PostgreSQL).

    One watcher per manager, so the store's sticky commit signal has a single consumer and no
    reader can miss a wake-up another one cleared.
    """
    failures = 0
    while True:
        try:
            woke = await manager.event_store.wait_for_new_events(manager.poll_interval)
        except Exception as exc:
            failures += 1
            delay = min(0.1 * 2**failures, _MAX_WATCH_BACKOFF)
            logger.debug("Waiting for store commits failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            continue
        failures = 0
        if woke:
            manager._wake_readers()
