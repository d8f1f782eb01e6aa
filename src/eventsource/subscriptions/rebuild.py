"""Rebuild a projection from the first event, with progress reports.

The projection is reset (its checkpoint forgotten, its read model truncated) and then run by an
ordinary subscription from the beginning until it has caught up: the same reader, the same
commit-safe order, and checkpoints once per page (`CheckpointStrategy.EVERY_BATCH`), never one
round trip per event. A `DatabaseProjection` commits each page with its checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventsource.protocols import FlexibleEventSubscriber
from eventsource.repositories.checkpoint import CheckpointRepository, InMemoryCheckpointRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions.config import CheckpointStrategy, SubscriptionConfig
from eventsource.subscriptions.exceptions import SubscriptionError
from eventsource.subscriptions.manager import SubscriptionManager
from eventsource.subscriptions.subscription import SubscriptionState

__all__ = ["RebuildProgress", "rebuild_projection"]


@dataclass(frozen=True)
class RebuildProgress:
    """Where a rebuild stands: events read of those stored when it started."""

    name: str
    events_read: int
    events_total: int
    events_handled: int
    elapsed_seconds: float

    @property
    def fraction(self) -> float:
        """0.0 to 1.0 (1.0 for an empty store)."""
        if self.events_total <= 0:
            return 1.0
        return min(1.0, self.events_read / self.events_total)


_STATE_POLL = 0.02
ProgressCallback = Callable[[RebuildProgress], Awaitable[None] | None]


async def rebuild_projection(
    projection: FlexibleEventSubscriber,
    event_store: EventStore,
    checkpoint_repo: CheckpointRepository | None = None,
    *,
    name: str | None = None,
    batch_size: int = 1000,
    on_progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
) -> RebuildProgress:
    """Reset `projection`, replay every stored event into it, and return the final progress.

    `on_progress` (sync or async) is called every `progress_interval` seconds and once at the
    end. Raises `SubscriptionError` if the subscription stops in error.
    """
    repo: CheckpointRepository = (
        checkpoint_repo
        or getattr(projection, "checkpoint_repo", None)
        or InMemoryCheckpointRepository(enable_tracing=False)
    )
    subscription_name: str = name or str(
        getattr(projection, "projection_name", type(projection).__name__)
    )
    reset = getattr(projection, "reset", None)
    if callable(reset):
        await reset()
    await repo.reset_checkpoint(projection_name=subscription_name)
    total = await event_store.committed_lag(None)
    manager = SubscriptionManager(event_store, None, repo, enable_tracing=False)
    config = SubscriptionConfig(
        start_from="beginning",
        batch_size=batch_size,
        checkpoint_strategy=CheckpointStrategy.EVERY_BATCH,
        continue_on_error=True,
    )
    subscription = await manager.subscribe(projection, config, name=subscription_name)
    started = time.monotonic()

    async def report() -> RebuildProgress:
        lag = await event_store.committed_lag(manager.get_cursor(subscription_name))
        progress = RebuildProgress(
            name=subscription_name,
            events_read=max(0, total - lag) if total else 0,
            events_total=total,
            events_handled=subscription.events_processed,
            elapsed_seconds=time.monotonic() - started,
        )
        if on_progress is not None:
            outcome = on_progress(progress)
            if outcome is not None:
                await outcome
        return progress

    async with manager:
        reported = time.monotonic()
        while subscription.state is not SubscriptionState.LIVE:
            if subscription.state is SubscriptionState.ERROR:
                raise SubscriptionError(
                    f"Rebuilding {subscription_name} failed: {subscription.last_error}"
                )
            await asyncio.sleep(_STATE_POLL)
            if time.monotonic() - reported >= progress_interval:
                reported = time.monotonic()
                await report()
        return await report()
