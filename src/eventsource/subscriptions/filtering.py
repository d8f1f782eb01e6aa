"""Which events a subscription wants, as a standalone object (0.2.0's `EventFilter`).

The manager selects events with `selection.EventSelection`, by the same rules for event and
aggregate types; `EventFilter` adds name patterns and a tenant, counts what it saw, and can be
used anywhere, for example inside a subscriber.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from eventsource.subscriptions.selection import declared_type_names

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent
    from eventsource.protocols import FlexibleEventSubscriber
    from eventsource.subscriptions.config import SubscriptionConfig

__all__ = ["EventFilter", "FilterStats", "matches_event_type", "matches_pattern"]


@dataclass
class FilterStats:
    """How many events a filter evaluated, let through and skipped."""

    events_evaluated: int = 0
    events_matched: int = 0
    events_skipped: int = 0

    @property
    def match_rate(self) -> float:
        """Matched / evaluated (1.0 before any event)."""
        return self.events_matched / self.events_evaluated if self.events_evaluated else 1.0

    def record_match(self) -> None:
        self.events_evaluated += 1
        self.events_matched += 1

    def record_skip(self) -> None:
        self.events_evaluated += 1
        self.events_skipped += 1

    def to_dict(self) -> dict[str, int | float]:
        return {
            "events_evaluated": self.events_evaluated,
            "events_matched": self.events_matched,
            "events_skipped": self.events_skipped,
            "match_rate": round(self.match_rate, 4),
        }


@dataclass
class EventFilter:
    """Matches an event when it passes every criterion given; with none it matches everything.

    * `event_types`: the event is an instance of one of them, or has one's `event_type` name
      (so an event read back by name matches its class). An empty tuple means no criterion.
    * `event_type_patterns`: its `event_type` matches one of the `fnmatch` patterns
      (`"Order*"`, `"*Created"`, `"?"` for one character).
    * `aggregate_types`: its `aggregate_type` is one of them.
    * `tenant_id`: its `tenant_id` is this one.
    """

    event_types: tuple[type[DomainEvent], ...] | None = None
    event_type_patterns: tuple[str, ...] | None = None
    aggregate_types: tuple[str, ...] | None = None
    tenant_id: UUID | None = None
    _stats: FilterStats = field(default_factory=FilterStats, init=False, repr=False)

    def __post_init__(self) -> None:
        self._types = tuple(self.event_types) if self.event_types else None
        self._names = declared_type_names(self._types or ())
        self._aggregates = frozenset(self.aggregate_types) if self.aggregate_types else None

    @classmethod
    def from_config(cls, config: SubscriptionConfig) -> EventFilter:
        """The config's event and aggregate types."""
        return cls(event_types=config.event_types, aggregate_types=config.aggregate_types)

    @classmethod
    def from_subscriber(cls, subscriber: FlexibleEventSubscriber) -> EventFilter:
        """What `subscriber.subscribed_to()` names (nothing named: every event)."""
        return cls(event_types=tuple(subscriber.subscribed_to()) or None)

    @classmethod
    def from_config_and_subscriber(
        cls, config: SubscriptionConfig, subscriber: FlexibleEventSubscriber
    ) -> EventFilter:
        """The filter the manager applies: the config's event types, else the subscriber's,
        and the config's aggregate types."""
        types = config.event_types
        if types is None:
            types = tuple(subscriber.subscribed_to()) or None
        return cls(event_types=types, aggregate_types=config.aggregate_types)

    @classmethod
    def from_patterns(cls, *patterns: str) -> EventFilter:
        return cls(event_type_patterns=patterns)

    @property
    def is_configured(self) -> bool:
        """Whether any criterion is set."""
        return not (
            self.event_types is None and self.event_type_patterns is None
            and self.aggregate_types is None and self.tenant_id is None
        )

    @property
    def stats(self) -> FilterStats:
        return self._stats

    @property
    def event_type_names(self) -> list[str] | None:
        """The `event_type` names of `event_types` (None when there are none)."""
        return sorted(self._names) or None

    def matches(self, event: DomainEvent) -> bool:
        """Whether `event` passes; counted in `stats`."""
        matched = self._passes(event)
        if matched:
            self._stats.record_match()
        else:
            self._stats.record_skip()
        return matched

    def _passes(self, event: DomainEvent) -> bool:
        if self._types is not None and not (
            isinstance(event, self._types) or event.event_type in self._names
        ):
            return False
        patterns = self.event_type_patterns
        if patterns is not None and not any(matches_pattern(event.event_type, p) for p in patterns):
            return False
        if self._aggregates is not None and event.aggregate_type not in self._aggregates:
            return False
        return self.tenant_id is None or event.tenant_id == self.tenant_id

    def reset_stats(self) -> None:
        self._stats = FilterStats()

    def __repr__(self) -> str:
        parts = []
        if self.event_types:
            parts.append(f"event_types={[t.__name__ for t in self.event_types]}")
        if self.event_type_patterns:
            parts.append(f"patterns={list(self.event_type_patterns)}")
        if self.aggregate_types:
            parts.append(f"aggregates={list(self.aggregate_types)}")
        if self.tenant_id:
            parts.append(f"tenant_id={self.tenant_id}")
        return f"EventFilter({', '.join(parts) or 'all'})"


def matches_event_type(
    event: DomainEvent, event_types: tuple[type[DomainEvent], ...] | None
) -> bool:
    """Whether `event` is of one of `event_types` (None: any type)."""
    return event_types is None or type(event) in event_types


def matches_pattern(event_type_name: str, pattern: str) -> bool:
    """Whether `event_type_name` matches the `fnmatch` `pattern` (case-sensitive)."""
    return fnmatch.fnmatchcase(event_type_name, pattern)
