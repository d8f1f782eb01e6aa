"""A subscription's identity, lifecycle state and counters."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsource._attributes import ReadOnly
from eventsource.events.base import DomainEvent
from eventsource.protocols import FlexibleEventSubscriber
from eventsource.subscriptions.config import SubscriptionConfig
from eventsource.subscriptions.exceptions import SubscriptionStateError, TransitionError
from eventsource.subscriptions.retry import CircuitBreaker
from eventsource.types import JSON

if TYPE_CHECKING:
    from eventsource.subscriptions.error_handling import ErrorInfo

__all__ = [
    "VALID_TRANSITIONS",
    "BatchHandler",
    "EventHandler",
    "PauseReason",
    "Subscription",
    "SubscriptionState",
    "SubscriptionStatus",
    "is_valid_transition",
]

logger = logging.getLogger("eventsource.subscriptions.manager")

EventHandler = Callable[[DomainEvent], Awaitable[None]]
"""A coroutine function handling one event."""

BatchHandler = Callable[[Sequence[DomainEvent]], Awaitable[None]]
"""A coroutine function handling a page of events."""


class SubscriptionState(Enum):
    """Where a subscription is in its life: starting, catching up from the store, live, paused,
    stopped, or stopped in error."""

    STARTING = "starting"
    CATCHING_UP = "catching_up"
    LIVE = "live"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


_S = SubscriptionState
VALID_TRANSITIONS: Mapping[SubscriptionState, frozenset[SubscriptionState]] = {
    _S.STARTING: frozenset({_S.CATCHING_UP, _S.LIVE, _S.STOPPED, _S.ERROR}),
    _S.CATCHING_UP: frozenset({_S.LIVE, _S.PAUSED, _S.STOPPED, _S.ERROR}),
    _S.LIVE: frozenset({_S.CATCHING_UP, _S.PAUSED, _S.STOPPED, _S.ERROR}),
    _S.PAUSED: frozenset({_S.CATCHING_UP, _S.LIVE, _S.STOPPED, _S.ERROR}),
    _S.STOPPED: frozenset({_S.STARTING}),
    _S.ERROR: frozenset({_S.STARTING}),
}
"""The moves `Subscription.transition_to` allows, by current state (see `Subscription`)."""


def is_valid_transition(from_state: SubscriptionState, to_state: SubscriptionState) -> bool:
    """Whether a subscription in `from_state` may move to `to_state`."""
    return to_state in VALID_TRANSITIONS[from_state]


class _Done:
    """What `transition_to` returns: the move is made already; awaiting it (as code written for
    0.2.0's coroutine does) returns at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator that ends at once


_DONE = _Done()


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

    def to_dict(self) -> JSON:
        data = dict(vars(self))
        for key in ("last_processed_at", "started_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


class Subscription:
    """One subscriber reading the store under a name; the manager's reader updates it.

    `last_processed_position` is the global position of the last event read past, handled or
    filtered out; `events_processed` counts only the events handed to the subscriber.

    The state changes only through `transition_to`, which allows these moves
    (`VALID_TRANSITIONS`) and raises `TransitionError` on any other:

    * STARTING -> CATCHING_UP, LIVE, STOPPED, ERROR
    * CATCHING_UP -> LIVE, PAUSED, STOPPED, ERROR
    * LIVE -> CATCHING_UP (fell behind), PAUSED, STOPPED, ERROR
    * PAUSED -> CATCHING_UP, LIVE, STOPPED, ERROR
    * STOPPED -> STARTING (its manager starts it again)
    * ERROR -> STARTING (restarted)
    """

    def __init__(
        self, name: str, config: SubscriptionConfig, subscriber: FlexibleEventSubscriber
    ) -> None:
        self.name = name
        self.config = config
        self.subscriber = subscriber
        self.handler = _async_handler(subscriber)
        self._state = SubscriptionState.STARTING
        self._previous_state: SubscriptionState | None = None
        self.last_processed_position = 0
        self.events_processed = 0
        self.events_failed = 0
        self.events_dlq = 0
        self.events_corrupt = 0  # stored rows that could not be read (see CorruptEventPolicy)
        self.started_at: datetime | None = None
        self.last_error: BaseException | None = None
        self.last_error_at: datetime | None = None
        self._pause_reason: PauseReason | None = None
        self._state_before_pause: SubscriptionState | None = None
        self._paused_at: datetime | None = None
        self._not_paused = asyncio.Event()
        self._not_paused.set()
        self.store_reachable = True
        self.caught_up = False
        self.circuit_breaker: CircuitBreaker | None = (
            CircuitBreaker(config.get_circuit_breaker_config())
            if config.circuit_breaker_enabled
            else None
        )
        self._recent_errors: Sequence[ErrorInfo] = ()  # its error handler's log
        self.max_known_position = 0
        self.last_event: DomainEvent | None = None
        # (event id, type) given to `record_event_processed` by code that drives the
        # subscription itself; the manager's reader sets `last_event` instead.
        self._last_recorded: tuple[UUID, str] | None = None
        self._last_read_at: float | None = None
        self._started_monotonic: float | None = None
        self._dlq_at_start = 0  # events_dlq when the current run started

    def __repr__(self) -> str:
        return f"Subscription(name={self.name!r}, state={self.state.value})"

    def __str__(self) -> str:
        return (f"Subscription({self.name}, state={self.state.value}, "
                f"pos={self.last_processed_position})")

    @property
    def last_event_id(self) -> UUID | None:
        """The id of the last event handed over."""
        if self.last_event is not None:
            return self.last_event.event_id
        return self._last_recorded[0] if self._last_recorded is not None else None

    @property
    def last_event_type(self) -> str | None:
        """The type of the last event handed over."""
        if self.last_event is not None:
            return self.last_event.event_type
        return self._last_recorded[1] if self._last_recorded is not None else None

    @property
    def last_processed_at(self) -> datetime | None:
        """When the reader last finished an event or a page (wall clock)."""
        if self._last_read_at is None:
            return None
        return datetime.fromtimestamp(self._last_read_at, UTC)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def state(self) -> SubscriptionState:
        """Where the subscription is in its life; changed only by `transition_to`."""
        return self._state

    @property
    def previous_state(self) -> SubscriptionState | None:
        """The state before the last transition (None before the first)."""
        return self._previous_state

    def transition_to(self, new_state: SubscriptionState) -> Awaitable[None]:
        """Move to `new_state`, or raise `TransitionError` if `VALID_TRANSITIONS` forbids it.

        The move is made before this returns; the result may be awaited (0.2.0 made this a
        coroutine) and need not be.
        """
        old = self._state
        if new_state not in VALID_TRANSITIONS[old]:
            allowed = sorted(s.value for s in VALID_TRANSITIONS[old])
            raise TransitionError(
                f"Cannot transition from {old.value} to {new_state.value} (subscription "
                f"{self.name}). Valid transitions: {allowed}",
                subscription_name=self.name, from_state=old, to_state=new_state,
            )
        self._previous_state = old
        self._state = new_state
        logger.debug("Subscription %s: %s -> %s", self.name, old.value, new_state.value)
        return _DONE

    def fail(self, error: BaseException) -> None:
        """Record `error` and end in ERROR (kept if already there)."""
        self.last_error = error
        if self._state is not SubscriptionState.ERROR:
            self.transition_to(SubscriptionState.ERROR)

    async def set_error(self, error: Exception) -> None:
        """Count `error` as a failed event and end in ERROR."""
        await self.record_event_failed(error)
        self.fail(error)

    def mark_started(self) -> None:
        """A new run begins: STARTING, uptime counted from now."""
        if self._state is not SubscriptionState.STARTING:
            self.transition_to(SubscriptionState.STARTING)
        self.started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        self._dlq_at_start = self.events_dlq

    # -- pause ----------------------------------------------------------------------------

    async def pause(self, reason: PauseReason = PauseReason.MANUAL) -> None:
        """Move from CATCHING_UP or LIVE to PAUSED, remembering why, when and from where.

        Raises `SubscriptionStateError` in any other state.
        """
        before = self._state
        if before not in (SubscriptionState.CATCHING_UP, SubscriptionState.LIVE):
            raise SubscriptionStateError(
                f"Subscription {self.name} cannot pause while {before.value}: only while "
                "catching up or live"
            )
        self.transition_to(SubscriptionState.PAUSED)
        self._state_before_pause = before
        self._pause_reason = reason
        self._paused_at = datetime.now(UTC)
        self._not_paused.clear()

    async def resume(self) -> None:
        """Move from PAUSED back to the state it was paused in; raises
        `SubscriptionStateError` when not paused."""
        if self._state is not SubscriptionState.PAUSED:
            raise SubscriptionStateError(
                f"Subscription {self.name} cannot resume while {self._state.value}: it is not "
                "paused"
            )
        self.transition_to(self._state_before_pause or SubscriptionState.CATCHING_UP)
        self._pause_reason = None
        self._paused_at = None
        self._not_paused.set()

    async def wait_if_paused(self) -> bool:
        """Return at once when not paused (False), else when resumed (True)."""
        if self._not_paused.is_set():
            return False
        await self._not_paused.wait()
        return True

    pause_reason: ReadOnly[PauseReason | None] = ReadOnly("_pause_reason")
    """Why the subscription is paused (None when it is not)."""
    state_before_pause: ReadOnly[SubscriptionState | None] = ReadOnly("_state_before_pause")
    """The state the last pause started from (None before any pause)."""
    paused_at: ReadOnly[datetime | None] = ReadOnly("_paused_at")
    """When the current pause began (None when not paused)."""

    @property
    def pause_duration_seconds(self) -> float | None:
        """How long the current pause has lasted (None when not paused)."""
        if self._paused_at is None:
            return None
        return (datetime.now(UTC) - self._paused_at).total_seconds()

    # -- progress -------------------------------------------------------------------------

    def keep_errors_in(self, log: Sequence[ErrorInfo]) -> None:
        """Report `log` (kept up to date by its error handler) as the recent errors."""
        self._recent_errors = log

    recent_errors: ReadOnly[list[ErrorInfo]] = ReadOnly("_recent_errors", list)
    """The last failures on events, oldest first (at most `max_recent_errors`)."""
    recent_errors_count: ReadOnly[int] = ReadOnly("_recent_errors", len)
    """How many failures `recent_errors` holds."""

    def touch(self) -> None:
        self._last_read_at = time.time()

    async def record_event_processed(self, position: int, event_id: UUID, event_type: str) -> None:
        """Count one event handed over, at global `position`."""
        self.last_processed_position = position
        self.events_processed += 1
        self.last_event = None
        self._last_recorded = (event_id, event_type)
        self.touch()

    async def record_event_failed(self, error: Exception) -> None:
        """Count one event the subscriber failed on."""
        self.events_failed += 1
        self.last_error = error
        self.last_error_at = datetime.now(UTC)

    async def update_max_position(self, position: int) -> None:
        """The store holds events up to global `position` (for `lag`)."""
        self.max_known_position = max(self.max_known_position, position)

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

    @property
    def dead_letters_since_start(self) -> int:
        """Events this subscription sent to the dead-letter queue since its current run began
        (`events_dlq` counts them over the subscription's whole life)."""
        return self.events_dlq - self._dlq_at_start

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
