"""The shapes of a subscriber (0.2.0's `eventsource.subscriptions.subscriber`).

Anything with `subscribed_to()` and `handle(event)` can be subscribed to the manager, which
hands it one event at a time, in store order; `handle` may be async or plain. The base classes
here are conveniences for writing one. A `handle_batch` is for the caller's own use: the
manager does not call it (projections batch through their own `handle_batch`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from eventsource.subscriptions.exceptions import SubscriptionConfigError

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent

__all__ = [
    "BaseSubscriber",
    "BatchAwareSubscriber",
    "BatchSubscriber",
    "FilteringSubscriber",
    "Subscriber",
    "SyncSubscriber",
    "get_subscribed_event_types",
    "supports_batch_handling",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class Subscriber(Protocol):
    """Names the event types it wants and handles one event at a time, asynchronously."""

    def subscribed_to(self) -> list[type[DomainEvent]]: ...

    async def handle(self, event: DomainEvent) -> None: ...


@runtime_checkable
class SyncSubscriber(Protocol):
    """A subscriber whose `handle` is a plain function (the manager calls it as it is)."""

    def subscribed_to(self) -> list[type[DomainEvent]]: ...

    def handle(self, event: DomainEvent) -> None: ...


@runtime_checkable
class BatchSubscriber(Protocol):
    """A subscriber that can take a sequence of events at once, in store order."""

    def subscribed_to(self) -> list[type[DomainEvent]]: ...

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None: ...


def supports_batch_handling(subscriber: object) -> bool:
    """Whether `subscriber` has a callable `handle_batch`."""
    return callable(getattr(subscriber, "handle_batch", None))


def get_subscribed_event_types(subscriber: Any) -> list[type[DomainEvent]]:
    """`subscriber.subscribed_to()`, checked to be a list."""
    types = subscriber.subscribed_to()
    if not isinstance(types, list):
        raise SubscriptionConfigError(
            f"{type(subscriber).__name__}.subscribed_to() must return a list, "
            f"got {type(types).__name__}"
        )
    return types


class BaseSubscriber(ABC):
    """Base class: implement `subscribed_to()` and `handle(event)`."""

    @abstractmethod
    def subscribed_to(self) -> list[type[DomainEvent]]: ...

    @abstractmethod
    async def handle(self, event: DomainEvent) -> None: ...

    def can_handle(self, event: DomainEvent) -> bool:
        """Whether the event's class is one `subscribed_to()` names."""
        return type(event) in self.subscribed_to()

    def __repr__(self) -> str:
        names = [kind.__name__ for kind in self.subscribed_to()]
        return f"{type(self).__name__}(subscribed_to={names})"


class BatchAwareSubscriber(BaseSubscriber):
    """A `BaseSubscriber` whose `handle_batch` handles each event in turn (override it to do
    better)."""

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            await self.handle(event)

    async def handle_batch_with_error_tracking(
        self, events: Sequence[DomainEvent]
    ) -> tuple[int, list[tuple[DomainEvent, Exception]]]:
        """Handle every event, collecting failures instead of stopping at the first:
        `(handled, [(event, error), ...])`."""
        handled = 0
        failures: list[tuple[DomainEvent, Exception]] = []
        for event in events:
            try:
                await self.handle(event)
            except Exception as error:
                failures.append((event, error))
                logger.warning("%s failed on %s %s: %s", type(self).__name__,
                               event.event_type, event.event_id, error)
            else:
                handled += 1
        return handled, failures


class FilteringSubscriber(BatchAwareSubscriber):
    """Handles only what `should_handle(event)` accepts (by default `can_handle`), in
    `_process_event(event)`, which subclasses implement instead of `handle`."""

    def should_handle(self, event: DomainEvent) -> bool:
        return self.can_handle(event)

    async def handle(self, event: DomainEvent) -> None:
        if self.should_handle(event):
            await self._process_event(event)

    @abstractmethod
    async def _process_event(self, event: DomainEvent) -> None: ...

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            await self.handle(event)
