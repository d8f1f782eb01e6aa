"""Which stored events a subscription hands over: its event types and aggregate types."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from eventsource.events.base import DomainEvent
    from eventsource.stores.interface import StoredEvent
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["EventSelection", "declared_type_names"]


def declared_type_names(types: Iterable[type[DomainEvent]]) -> set[str]:
    """The `event_type` names the event classes declare (a stored event is matched by name
    too, so a class registered under another module path still matches)."""
    return {
        field.default
        for cls in types
        if (field := getattr(cls, "model_fields", {}).get("event_type")) is not None
        and isinstance(field.default, str)
    }


class EventSelection:
    """A subscription's filter: `config.event_types` (else what the subscriber subscribes to)
    and `config.aggregate_types`; an empty list of event types means every event."""

    def __init__(self, subscription: Subscription) -> None:
        config = subscription.config
        types = config.event_types
        if types is None:
            types = tuple(subscription.subscriber.subscribed_to())
        # An empty list means "every event", as for `AsyncEventHandler.event_types()`.
        self._types = tuple(types) if types else None
        self._type_names = declared_type_names(types or ())
        self._aggregates = frozenset(config.aggregate_types) if config.aggregate_types else None
        self._accepted: dict[type[DomainEvent], bool] = {}

    @property
    def filter(self) -> Callable[[StoredEvent], bool] | None:
        """`wants`, or None when every event is wanted (the hot path skips the call)."""
        return None if self._types is None and self._aggregates is None else self.wants

    def wants(self, stored: StoredEvent) -> bool:
        """Whether the subscription hands `stored` over."""
        if self._types is not None:
            event = stored.event
            kind = type(event)
            accepted = self._accepted.get(kind)
            if accepted is None:
                accepted = self._accepted[kind] = (
                    issubclass(kind, self._types) or event.event_type in self._type_names
                )
            if not accepted:
                return False
        return self._aggregates is None or stored.stream_id.partition(":")[2] in self._aggregates
