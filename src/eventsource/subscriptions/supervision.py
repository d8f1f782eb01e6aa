"""The manager's background duties: stopping readers gracefully and hearing store commits."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from eventsource.subscriptions.shutdown import ShutdownPhase, ShutdownResult
from eventsource.subscriptions.subscription import SubscriptionState

if TYPE_CHECKING:
    from eventsource.subscriptions.manager import SubscriptionManager

__all__ = ["stop_readers", "watch_store"]

logger = logging.getLogger("eventsource.subscriptions.manager")

_MAX_WATCH_BACKOFF = 5.0


async def stop_readers(
    manager: SubscriptionManager, names: list[str], timeout: float, reason: str | None = None
) -> ShutdownResult:
    """Stop the named readers: drain their current page, cancel them at the drain timeout,
    save final checkpoints. Moves the manager through the shutdown phases when it stops all."""
    started = time.monotonic()
    full = manager.shutdown_phase is ShutdownPhase.STOPPING
    readers = [(name, manager._readers[name]) for name in names if name in manager._readers]
    in_flight = sum(reader.in_flight for _, reader in readers)
    if full:
        manager._phase = ShutdownPhase.DRAINING
    for _, reader in readers:
        reader.request_stop()
    tasks = [reader.task for _, reader in readers if reader.task is not None]
    forced = False
    if tasks:
        drain = max(0.0, min(timeout, manager.drain_timeout))
        _done, pending = await asyncio.wait(tasks, timeout=drain)
        if pending:
            forced = True
            logger.warning("%d subscription(s) did not drain in time; cancelling", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    if full:
        manager._phase = ShutdownPhase.CHECKPOINTING
    saved = 0
    for name, reader in readers:
        remaining = max(0.5, timeout - (time.monotonic() - started))
        try:
            async with asyncio.timeout(remaining):
                saved += await reader.save_final_checkpoint()
        except TimeoutError:
            forced = True
            logger.warning("Subscription %s: final checkpoint timed out", name)
    for name, reader in readers:
        subscription = reader.sub
        if subscription.state is not SubscriptionState.ERROR:
            subscription.state = SubscriptionState.STOPPED
        manager._readers.pop(name, None)
    return ShutdownResult(
        phase=ShutdownPhase.FORCED if forced else ShutdownPhase.STOPPED,
        duration_seconds=time.monotonic() - started,
        subscriptions_stopped=len(readers),
        events_drained=sum(reader.events_drained for _, reader in readers),
        checkpoints_saved=saved,
        forced=forced,
        reason=reason,
        in_flight_at_start=in_flight,
        events_not_drained=sum(reader.in_flight for _, reader in readers),
    )


async def watch_store(manager: SubscriptionManager) -> None:
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
