"""Given / when / then for aggregates: test domain logic with no store at all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from eventsource._ids import new_uuid4
from eventsource.aggregates.base import AggregateRoot
from eventsource.events.base import DomainEvent

__all__ = ["AggregateScenario", "ScenarioAssertionError"]

A = TypeVar("A", bound=AggregateRoot[Any])


class ScenarioAssertionError(AssertionError):
    """A `then_*` expectation did not hold; the message shows what happened instead."""


class AggregateScenario(Generic[A]):
    """`AggregateScenario(Account).given(opened).when(lambda a: a.deposit(5)).then(Deposited)`.

    `given` events are replayed as history; `when` runs a command on the aggregate; the `then_*`
    methods check the new (uncommitted) events, the error raised, or the state.
    """

    def __init__(self, factory: Callable[[UUID], A], aggregate_id: UUID | None = None) -> None:
        self.aggregate_id = aggregate_id or new_uuid4()
        self.aggregate: A = factory(self.aggregate_id)
        self._error: BaseException | None = None
        self._ran = False

    def given(self, *events: DomainEvent) -> Self:
        """Replay past events (their aggregate_version sets the aggregate's version)."""
        self.aggregate.load_from_history(events)
        return self

    def when(self, command: Callable[[A], object]) -> Self:
        """Run a command; an exception is kept for `then_raises`."""
        self._ran = True
        try:
            command(self.aggregate)
        except Exception as exc:
            self._error = exc
        return self

    @property
    def new_events(self) -> list[DomainEvent]:
        return self.aggregate.uncommitted_events

    def _succeeded(self) -> None:
        if not self._ran:
            raise ScenarioAssertionError("call when(...) before then(...)")
        if self._error is not None:
            raise ScenarioAssertionError(
                f"the command raised {type(self._error).__name__}: {self._error}"
            ) from self._error

    def then(self, *expected: type[DomainEvent] | DomainEvent) -> Self:
        """The command raised nothing and emitted exactly these events, in order.

        Give a class to check the type only, or an event to compare its payload (ids, times
        and versions are ignored).
        """
        self._succeeded()
        got = self.new_events
        if len(got) != len(expected) or not all(map(_matches, got, expected)):
            raise ScenarioAssertionError(
                f"expected events {[_describe(e) for e in expected]}, "
                f"got {[_describe(e) for e in got]}"
            )
        return self

    def then_nothing(self) -> Self:
        """The command raised nothing and emitted no event."""
        return self.then()

    def then_raises(self, error: type[BaseException], match: str | None = None) -> Self:
        """The command raised `error` (with `match` in its message) and emitted nothing."""
        if not isinstance(self._error, error):
            raise ScenarioAssertionError(
                f"expected {error.__name__}, got "
                + (f"{type(self._error).__name__}: {self._error}" if self._error else "no error")
            )
        if match is not None and match not in str(self._error):
            raise ScenarioAssertionError(f"{match!r} is not in the error message {self._error}")
        if self.new_events:
            raise ScenarioAssertionError(
                f"the failed command still emitted {[_describe(e) for e in self.new_events]}"
            )
        return self

    def then_state(self, check: Callable[[Any], object]) -> Self:
        """`check(state)` is truthy (or returns None without raising)."""
        self._succeeded()
        outcome = check(self.aggregate.state)
        if outcome is False:
            raise ScenarioAssertionError(f"state check failed on {self.aggregate.state!r}")
        return self


_IGNORED = frozenset({
    "event_id", "occurred_at", "correlation_id", "causation_id", "aggregate_version",
    "aggregate_id",
})


def _payload(event: DomainEvent) -> dict[str, Any]:
    return {k: v for k, v in event.model_dump().items() if k not in _IGNORED}


def _matches(got: DomainEvent, expected: type[DomainEvent] | DomainEvent) -> bool:
    if isinstance(expected, type):
        return isinstance(got, expected)
    return type(got) is type(expected) and _payload(got) == _payload(expected)


def _describe(event: type[DomainEvent] | DomainEvent | Sequence[Any]) -> str:
    if isinstance(event, type):
        return event.__name__
    if isinstance(event, DomainEvent):
        return f"{type(event).__name__}({_payload(event)})"
    return repr(event)
