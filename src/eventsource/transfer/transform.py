"""The transform of a copy: what it sees (a `Step`: one source event and the events after it
in its own stream) and what it may return (nothing, one event, or several).

A copy reads the source a window (a page in global order) at a time and calls the transform
once per unconsumed event, in global order. `step.ahead(n)` looks `n` events further along the
same stream; `step.absorb(n)` consumes those events too, so a merge of a pair is one step that
returns one event. When the event asked for lies beyond the window, the copy stops this
stream for the window and calls the step again, with a larger window, in the next one (so a
transform must give the same answer when called again: decide from the events alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import SerializationError, TransformError
from eventsource.stores.codec import encode_payloads
from eventsource.stores.records import StoredEvent
from eventsource.transfer.rows import Outgoing

__all__ = ["Step", "Transform", "TransformResult", "Window", "per_event"]

TransformResult = DomainEvent | Iterable[DomainEvent] | None
Transform = Callable[["Step"], TransformResult]


class _NeedMore(BaseException):
    """The step looked beyond the window: retry it in the next one. (A BaseException, so a
    transform's broad `except Exception` cannot swallow it.)"""


class Step:
    """One call of a transform: `event`, the next unconsumed event of its stream, with a
    look along the rest of that stream."""

    __slots__ = ("_at", "_end", "_queue", "absorbed")

    def __init__(self, queue: Sequence[StoredEvent], at: int, end_of_source: bool) -> None:
        self._queue = queue
        self._at = at
        self._end = end_of_source
        self.absorbed = 0

    @property
    def event(self) -> StoredEvent:
        """The source event this step is about (with its stream and global position)."""
        return self._queue[self._at]

    def ahead(self, n: int = 1) -> StoredEvent | None:
        """The `n`-th event after `event` in the same stream; None when the stream has fewer
        events in the source."""
        if n < 1:
            raise ValueError(f"ahead(n) needs n >= 1, got {n}")
        index = self._at + n
        if index < len(self._queue):
            return self._queue[index]
        if self._end:
            return None
        raise _NeedMore

    def absorb(self, n: int = 1) -> None:
        """Consume the next `n` events of the stream with this one (a merge): what this step
        returns replaces them all."""
        if n < 1 or self.ahead(n) is None:
            raise ValueError(f"absorb({n}): the stream has no {n} more events after this one")
        self.absorbed = max(self.absorbed, n)


def per_event(
    function: Callable[[StoredEvent], TransformResult],
) -> Transform:
    """A transform from a function of one source event (rename, drop, split; no merge)."""

    def transform(step: Step) -> TransformResult:
        return function(step.event)

    transform.__name__ = getattr(function, "__name__", "per_event")
    return transform


def _identity(step: Step) -> TransformResult:
    return step.event.event


@dataclass
class Window:
    """One pass of the transform over a window: the events carried from the previous window
    (streams it stopped), then this page's, in global order."""

    carried: dict[str, list[StoredEvent]]
    page: Sequence[StoredEvent]
    end_of_source: bool
    registry: EventRegistry | None
    mapping: list[tuple[int, int | None]] = field(default_factory=list)
    _made: list[DomainEvent] = field(default_factory=list)
    _sources: list[StoredEvent] = field(default_factory=list)

    def run(self, transform: Transform | None) -> dict[str, list[StoredEvent]]:
        """Transform every event it can (`encode` then gives what to write, `mapping` where
        each consumed source event went); return the events of the streams stopped for the
        next window."""
        chosen = transform or _identity
        queues = self.carried
        for stored in self.page:
            queues.setdefault(stored.stream_id, []).append(stored)
        order = sorted(
            (stored for queue in queues.values() for stored in queue),
            key=lambda stored: stored.global_position,
        ) if self.carried else list(self.page)
        done: dict[str, int] = dict.fromkeys(queues, 0)
        stopped: set[str] = set()
        for stored in order:
            stream = stored.stream_id
            if stream in stopped:
                continue
            queue, at = queues[stream], done[stream]
            if at >= len(queue) or queue[at] is not stored:
                continue  # absorbed by an earlier step
            step = Step(queue, at, self.end_of_source)
            try:
                made = chosen(step)
            except _NeedMore:
                stopped.add(stream)
                continue
            except Exception as exc:
                raise TransformError(stored.event_id, stored.global_position,
                                     f"it raised {type(exc).__name__}: {exc}") from exc
            self._add(stored, made, queue[at : at + 1 + step.absorbed])
            done[stream] = at + 1 + step.absorbed
        return {stream: queue[done[stream]:] for stream, queue in queues.items()
                if done[stream] < len(queue)}

    def _add(self, stored: StoredEvent, made: object, consumed: Sequence[StoredEvent]) -> None:
        first: int | None = len(self._made)
        if isinstance(made, DomainEvent) and made.aggregate_id == stored.event.aggregate_id:
            self._made.append(made)  # the common case, checked at once
            self._sources.append(stored)
        else:
            events = _events_of(stored, made)
            first = first if events else None
            self._made.extend(events)
            self._sources.extend([stored] * len(events))
        if len(consumed) == 1:
            self.mapping.append((stored.global_position, first))
        else:
            self.mapping.extend((each.global_position, first) for each in consumed)

    def encode(self) -> list[Outgoing]:
        """The window's events with their JSON dumps, made in one pass (a refusal names the
        source event whose step returned the event)."""
        try:
            payloads = encode_payloads(self._made, self.registry)
        except SerializationError as exc:
            culprit = next(
                (source for source, event in zip(self._sources, self._made, strict=True)
                 if event.event_id == exc.event_id), self._sources[0],
            )
            raise TransformError(culprit.event_id, culprit.global_position,
                                 f"it returned an event that cannot be stored: {exc}") from exc
        types: dict[str, str] = {}
        batch = []
        for event, source, payload in zip(self._made, self._sources, payloads, strict=True):
            stream = source.stream_id
            aggregate_type = types.get(stream)
            if aggregate_type is None:
                aggregate_type = types[stream] = stream.partition(":")[2]
            batch.append(Outgoing(event, aggregate_type, payload))
        return batch


def _events_of(stored: StoredEvent, made: object) -> list[DomainEvent]:
    """The events a transform returned, checked: DomainEvents of the source event's stream."""
    if made is None:
        return []
    if isinstance(made, DomainEvent):
        events = [made]
    elif isinstance(made, Iterable) and not isinstance(made, str | bytes | dict):
        events = list(made)
    else:
        raise TransformError(stored.event_id, stored.global_position,
                             f"it returned a {type(made).__name__}, not events: {made!r:.200}")
    for event in events:
        if not isinstance(event, DomainEvent):
            raise TransformError(
                stored.event_id, stored.global_position,
                f"it returned a {type(event).__name__}, not a DomainEvent: {event!r:.200}",
            )
        if event.aggregate_id != stored.aggregate_id:
            raise TransformError(
                stored.event_id, stored.global_position,
                f"it returned {event.event_type} {event.event_id} of aggregate "
                f"{event.aggregate_id}: a copy keeps every event in its source stream "
                f"({stored.stream_id})",
            )
    return events
