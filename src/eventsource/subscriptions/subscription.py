"""A subscription's identity, lifecycle state and counters."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.protocols import FlexibleEventSubscriber
from eventsource.subscriptions.config import SubscriptionConfig
from eventsource.subscriptions.retry import CircuitBreaker

__all__ = ["PauseReason", "Subscription", "SubscriptionState", "SubscriptionStatus"]


class SubscriptionState(Enum):
    """Where a subscription is in its life: starting, catching up from the store, live, paused,
    stopped, or stopped in error."""

    STARTING = "starting"
    CATCHING_UP = "catching_up"
    LIVE = "live"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


_RUNNING = frozenset(
    {
        SubscriptionState.STARTING,
        SubscriptionState.CATCHING_UP,
        SubscriptionState.LIVE,
        SubscriptionState.PAUSED,
    }
)
_TERMINAL = frozenset({SubscriptionState.STOPPED, SubscriptionState.ERROR})


class PauseReason(Enum):
    """Why a subscription was paused (by hand, for back-pressure, or for maintenance)."""

    MANUAL = "manual"
    BACKPRESSURE = "backpressure"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class SubscriptionStatus:
    """A snapshot of one subscription for dashboards and logs."""

    name: str
    state: str
    position: int
    lag_events: int
    events_processed: int
    events_failed: int
    last_processed_at: datetime | None
    started_at: datetime | None
    uptime_seconds: float
    error: str | None
    events_dlq: int = 0
    recent_errors_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        for key in ("last_processed_at", "started_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


class Subscription:
    """One subscriber reading the store under a name; the manager's reader updates it.

    `last_processed_position` is the global position of the last event read past, handled or
    filtered out; `events_processed` counts only the events handed to the subscriber.
    """

    def __init__(
        self, name: str, config: SubscriptionConfig, subscriber: FlexibleEventSubscriber
    ) -> None:
        self.name = name
        self.config = config
        self.subscriber = subscriber
        self.handler = _async_handler(subscriber)
        self.state = SubscriptionState.STARTING
        self.last_processed_position = 0
        self.events_processed = 0
        self.events_failed = 0
        self.events_dlq = 0
        self.events_corrupt = 0  # stored rows that could not be read (see CorruptEventPolicy)
        self.started_at: datetime | None = None
        self.last_error: BaseException | None = None
        self.pause_reason: PauseReason | None = None
        self.store_reachable = True
        self.caught_up = False
        self.circuit_breaker: CircuitBreaker | None = (
            CircuitBreaker(config.get_circuit_breaker_config())
            if config.circuit_breaker_enabled
            else None
        )
        self.recent_errors_count = 0
        self.max_known_position = 0
        self.last_event: DomainEvent | None = None
        self._last_read_at: float | None = None
        self._started_monotonic: float | None = None

    def __repr__(self) -> str:
        return f"Subscription(name={self.name!r}, state={self.state.value})"

    @property
    def last_event_id(self) -> UUID | None:
        return self.last_event.event_id if self.last_event is not None else None

    @property
    def last_event_type(self) -> str | None:
        return self.last_event.event_type if self.last_event is not None else None

    @property
    def last_processed_at(self) -> datetime | None:
        """When the reader last finished an event or a page (wall clock)."""
        if self._last_read_at is None:
            return None
        return datetime.fromtimestamp(self._last_read_at, UTC)

    def mark_started(self) -> None:
        self.started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        self.state = SubscriptionState.STARTING

    def touch(self) -> None:
        self._last_read_at = time.time()

    @property
    def lag(self) -> int:
        """Events stored but not yet read past, as last measured (>= 0)."""
        return max(0, self.max_known_position - self.last_processed_position)

    @property
    def lag_seconds(self) -> float:
        """How far behind in time: now minus the last processed event's `occurred_at`.

        Zero when live and caught up (nothing left to read) or before any event.
        """
        if self.caught_up or self.last_event is None:
            return 0.0
        behind = datetime.now(UTC) - self.last_event.occurred_at
        return max(0.0, behind.total_seconds())

    @property
    def is_running(self) -> bool:
        return self.state in _RUNNING

    @property
    def is_terminal(self) -> bool:
        return self.state in _TERMINAL

    @property
    def is_paused(self) -> bool:
        return self.state is SubscriptionState.PAUSED

    @property
    def uptime_seconds(self) -> float:
        if self._started_monotonic is None or not self.is_running:
            return 0.0
        return time.monotonic() - self._started_monotonic

    def get_status(self) -> SubscriptionStatus:
        return SubscriptionStatus(
            name=self.name,
            state=self.state.value,
            position=self.last_processed_position,
            lag_events=self.lag,
            events_processed=self.events_processed,
            events_failed=self.events_failed,
            last_processed_at=self.last_processed_at,
            started_at=self.started_at,
            uptime_seconds=self.uptime_seconds,
            error=str(self.last_error) if self.last_error is not None else None,
            events_dlq=self.events_dlq,
            recent_errors_count=self.recent_errors_count,
        )


def _async_handler(subscriber: FlexibleEventSubscriber) -> Callable[[DomainEvent], Awaitable[Any]]:
    """The subscriber's `handle` as a coroutine function (sync handlers are wrapped once)."""
    handle = subscriber.handle
    if inspect.iscoroutinefunction(handle):
        return handle

    async def call(event: DomainEvent) -> None:
        result = handle(event)
        if inspect.isawaitable(result):
            await result

    return call
