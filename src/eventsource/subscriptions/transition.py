"""Where a subscription starts reading (0.2.0's `StartFromResolver`).

0.2.0 moved a subscription from a catch-up runner reading the store to a live runner on the
bus through a `TransitionCoordinator`. Here one reader follows the store from catch-up into
live, so there is no hand-over to coordinate (see the compatibility page); what remains of that
module is resolving `start_from`, which this does with the reader's own rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource.subscriptions.checkpointing import accepts_cursor
from eventsource.subscriptions.error_handling import ErrorHandlingConfig, SubscriptionErrorHandler
from eventsource.subscriptions.reader import SubscriptionReader
from eventsource.subscriptions.subscription import Subscription

if TYPE_CHECKING:
    from eventsource.repositories.checkpoint import CheckpointRepository
    from eventsource.stores.interface import EventStore

__all__ = ["StartFromResolver"]


class StartFromResolver:
    """Turns a subscription's `config.start_from` into the global position it starts after:
    `"beginning"` 0, `"end"` the store's current position, `"checkpoint"` the checkpointed
    position (0 without one), a number itself. The subscription is not changed."""

    def __init__(self, event_store: EventStore, checkpoint_repo: CheckpointRepository) -> None:
        self.event_store = event_store
        self.checkpoint_repo = checkpoint_repo

    async def resolve(self, subscription: Subscription) -> int:
        probe = Subscription(subscription.name, subscription.config, subscription.subscriber)
        reader = SubscriptionReader(
            probe, self.event_store, self.checkpoint_repo, None,
            SubscriptionErrorHandler(subscription.name), ErrorHandlingConfig(),
            save_cursor=accepts_cursor(self.checkpoint_repo.save_position), poll_interval=1.0,
        )
        await reader.resolve_start()
        return probe.last_processed_position
