"""`AggregateRoot` and `DeclarativeAggregate`: state rebuilt from events."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel

from eventsource._attributes import ReadOnly
from eventsource.events.base import DomainEvent
from eventsource.exceptions import EventVersionError, UnhandledEventError
from eventsource.projections.decorators import get_handled_event_type, handles
from eventsource.types import TState

__all__ = ["AggregateRoot", "DeclarativeAggregate", "handles"]

logger = logging.getLogger(__name__)


class AggregateRoot(ABC, Generic[TState]):
    """A consistency boundary whose state is the fold of its events.

    Subclasses implement `_apply` (update `self._state` from one event) and
    `_get_initial_state`, which is never called automatically: `state` stays None until the
    first event.
    """

    aggregate_type: ClassVar[str] = "Unknown"
    schema_version: ClassVar[int] = 1
    validate_versions: ClassVar[bool] = True

    def __init__(self, aggregate_id: UUID) -> None:
        self._aggregate_id = aggregate_id
        self._version = 0
        self._state: TState | None = None
        self._uncommitted_events: list[DomainEvent] = []

    aggregate_id: ReadOnly[UUID] = ReadOnly("_aggregate_id")
    """The id of this aggregate instance."""
    version: ReadOnly[int] = ReadOnly("_version")
    """The version of the last event applied (0 before any)."""
    state: ReadOnly[TState | None] = ReadOnly("_state")
    """The current state (None before the first event)."""

    uncommitted_events: ReadOnly[list[DomainEvent]] = ReadOnly("_uncommitted_events", list)
    """A copy of the events applied as new and not yet committed."""
    has_uncommitted_events: ReadOnly[bool] = ReadOnly("_uncommitted_events", bool)
    """Whether any event applied as new is not yet committed."""

    def get_next_version(self) -> int:
        return self._version + 1

    def apply_event(self, event: DomainEvent, is_new: bool = True) -> None:
        """Apply `event`; new events must carry the next version and are tracked for saving."""
        if is_new and event.aggregate_version != self._version + 1:
            if self.validate_versions:
                raise EventVersionError(
                    expected_version=self._version + 1,
                    actual_version=event.aggregate_version,
                    event_id=event.event_id,
                    aggregate_id=self._aggregate_id,
                )
            logger.warning(
                "Event %s (%s) has aggregate_version %d; aggregate %s expected %d",
                event.event_id, event.event_type, event.aggregate_version,
                self._aggregate_id, self._version + 1,
            )
        self._version = event.aggregate_version
        self._apply(event)
        if is_new:
            self._uncommitted_events.append(event)

    def _raise_event(self, event: DomainEvent) -> None:
        self.apply_event(event, is_new=True)

    def load_from_history(self, events: Iterable[DomainEvent]) -> None:
        """Replay stored events (no tracking, no version validation)."""
        for event in events:
            self.apply_event(event, is_new=False)

    def mark_events_as_committed(self) -> None:
        self._uncommitted_events.clear()

    def clear_uncommitted_events(self) -> list[DomainEvent]:
        """Return and forget the uncommitted events."""
        events, self._uncommitted_events = self._uncommitted_events, []
        return events

    @abstractmethod
    def _apply(self, event: DomainEvent) -> None:
        """Update the state from one event (new or replayed)."""

    @abstractmethod
    def _get_initial_state(self) -> TState:
        """The state before any event (never called automatically)."""

    def _serialize_state(self) -> dict[str, Any]:
        state = self._state
        if state is None:
            return {}
        return state.model_dump(mode="json")

    def _restore_from_snapshot(self, state_dict: dict[str, Any], schema_version: int) -> None:
        """Rebuild the state from a snapshot's dict (the repository sets the version)."""
        if not state_dict:
            return
        self._state = self._get_state_type().model_validate(state_dict)

    @classmethod
    def _get_state_type(cls) -> type[TState]:
        for klass in cls.__mro__:
            for base in getattr(klass, "__orig_bases__", ()):
                origin = get_origin(base)
                if isinstance(origin, type) and issubclass(origin, AggregateRoot):
                    for arg in get_args(base):
                        if isinstance(arg, type) and issubclass(arg, BaseModel):
                            return arg  # type: ignore[return-value]
        raise RuntimeError(f"Cannot determine the state type of {cls.__name__}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        assert isinstance(other, AggregateRoot)
        return other.aggregate_id == self._aggregate_id

    def __hash__(self) -> int:
        return hash((type(self), self._aggregate_id))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self._aggregate_id}, version={self._version})"


class DeclarativeAggregate(AggregateRoot[TState]):
    """An aggregate whose `_apply` dispatches to `@handles(EventClass)` methods.

    `unregistered_event_handling` says what an event without handler does: "ignore", "warn"
    or "error" (raise `UnhandledEventError`, also for replayed events).
    """

    unregistered_event_handling: ClassVar[str] = "ignore"
    _event_handlers: ClassVar[dict[type, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type, str] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                event_class = get_handled_event_type(member) if callable(member) else None
                if event_class is not None:
                    handlers[event_class] = name
        cls._event_handlers = handlers

    def _apply(self, event: DomainEvent) -> None:
        name = self._event_handlers.get(type(event))
        if name is not None:
            handler: Callable[[DomainEvent], Any] = getattr(self, name)
            handler(event)
            return
        mode = self.unregistered_event_handling
        if mode == "error":
            raise UnhandledEventError(
                event_type=type(event).__name__,
                event_id=event.event_id,
                handler_class=type(self).__name__,
                available_handlers=[cls.__name__ for cls in self._event_handlers],
            )
        if mode == "warn":
            logger.warning(
                "%s has no handler for %s (event %s)",
                type(self).__name__, type(event).__name__, event.event_id,
            )
