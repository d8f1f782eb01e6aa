"""The data of the event-store contract: versions, results, streams, stored events, read
options, and the rules on them every store shares (no I/O, no backend)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Self
from uuid import UUID

from eventsource.events.base import DomainEvent

__all__ = [
    "AppendResult",
    "CommittedPage",
    "EventStream",
    "ExpectedVersion",
    "ReadDirection",
    "ReadOptions",
    "ReadResult",
    "StoredEvent",
    "coerce_timestamp",
    "in_time_range",
    "make_stored_event",
    "parse_stream_id",
    "position_from_cursor",
    "select_stored",
    "stream_id_of",
    "successful_append",
]


class ExpectedVersion:
    """What `append_events` checks before writing. Any `n >= 0` means "exactly n events"."""

    NO_STREAM: Final[int] = 0
    ANY: Final[int] = -1
    STREAM_EXISTS: Final[int] = -2


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The outcome of an append. Conflicts are raised, so stored results have `success=True`."""

    success: bool
    new_version: int
    global_position: int = 0
    conflict: bool = False

    @classmethod
    def successful(cls, new_version: int, global_position: int = 0) -> AppendResult:
        return cls(True, new_version, global_position)

    @classmethod
    def conflicted(cls, current_version: int) -> AppendResult:
        return cls(False, current_version, 0, True)


@dataclass(frozen=True, init=False)
class EventStream:
    """One aggregate's events in version order."""

    aggregate_id: UUID
    aggregate_type: str
    events: list[DomainEvent] = field(default_factory=list)
    version: int = 0

    def __init__(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: list[DomainEvent] | None = None,
        version: int = 0,
    ) -> None:
        # Written by hand: every get_events builds one, and writing the instance dict directly
        # costs far less than the frozen dataclass's __init__. `events=None` means no events, as in
        # eventsource-py 0.2.0.
        fields = self.__dict__
        fields["aggregate_id"] = aggregate_id
        fields["aggregate_type"] = aggregate_type
        fields["events"] = [] if events is None else events
        fields["version"] = version

    @property
    def is_empty(self) -> bool:
        return not self.events

    @property
    def latest_event(self) -> DomainEvent | None:
        return self.events[-1] if self.events else None

    @classmethod
    def empty(cls, aggregate_id: UUID, aggregate_type: str) -> EventStream:
        return cls(aggregate_id, aggregate_type, [], 0)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with where and when the store put it. Positions are 1-based."""

    event: DomainEvent
    stream_id: str
    stream_position: int
    global_position: int
    stored_at: datetime

    @property
    def event_id(self) -> UUID:
        return self.event.event_id

    @property
    def event_type(self) -> str:
        return self.event.event_type

    @property
    def aggregate_id(self) -> UUID:
        return self.event.aggregate_id

    @property
    def aggregate_type(self) -> str:
        return self.event.aggregate_type


_new_object = object.__new__
_slots = StoredEvent.__dict__  # the slot descriptors; setting through them skips frozen checks
_set_event = _slots["event"].__set__
_set_stream_id = _slots["stream_id"].__set__
_set_stream_position = _slots["stream_position"].__set__
_set_global_position = _slots["global_position"].__set__
_set_stored_at = _slots["stored_at"].__set__


def make_stored_event(
    event: DomainEvent, stream_id: str, stream_position: int, global_position: int,
    stored_at: datetime,
) -> StoredEvent:
    """Build a `StoredEvent` through its slots: the frozen `__init__` costs several times more."""
    stored: StoredEvent = _new_object(StoredEvent)
    _set_event(stored, event)
    _set_stream_id(stored, stream_id)
    _set_stream_position(stored, stream_position)
    _set_global_position(stored, global_position)
    _set_stored_at(stored, stored_at)
    return stored


_result_slots = AppendResult.__dict__
_set_success = _result_slots["success"].__set__
_set_new_version = _result_slots["new_version"].__set__
_set_result_position = _result_slots["global_position"].__set__
_set_conflict = _result_slots["conflict"].__set__


def successful_append(new_version: int, global_position: int) -> AppendResult:
    """`AppendResult.successful` without the frozen-dataclass `__init__` (hot path)."""
    result: AppendResult = _new_object(AppendResult)
    _set_success(result, True)
    _set_new_version(result, new_version)
    _set_result_position(result, global_position)
    _set_conflict(result, False)
    return result


def stream_id_of(aggregate_id: UUID, aggregate_type: str) -> str:
    """The `"<aggregate_id>:<aggregate_type>"` name of a stream."""
    return f"{aggregate_id}:{aggregate_type}"


def parse_stream_id(stream_id: str) -> tuple[UUID, str | None]:
    """The aggregate id and type `read_stream` reads: `"<uuid>:<type>"`, or a bare UUID for
    the id's events of any type (type None). ValueError naming the stream id otherwise."""
    aggregate_id, _, aggregate_type = stream_id.partition(":")
    try:
        return UUID(aggregate_id), aggregate_type or None
    except ValueError:
        raise ValueError(
            f"stream_id must be '<uuid>:<type>' or a UUID, got {stream_id!r}"
        ) from None


class ReadDirection(Enum):
    """Which way `read_stream` / `read_all` walk: oldest first (FORWARD) or newest first."""

    FORWARD = "forward"
    BACKWARD = "backward"


@dataclass(frozen=True)
class ReadOptions:
    """Options of `read_all` / `read_stream`: positions after `from_position`, at most `limit`."""

    direction: ReadDirection = ReadDirection.FORWARD
    from_position: int = 0
    limit: int | None = None
    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None

    def __post_init__(self) -> None:
        if self.from_position < 0 and self.from_position != -1:
            raise ValueError(f"from_position must be >= 0 (or -1), got {self.from_position}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0 or None, got {self.limit}")


class ReadResult:
    """The result of `read_all` / `read_stream`: iterate it with `async for`, or await it.

    Awaiting collects every event into `.events` and returns the result itself.
    """

    __slots__ = ("_source", "events")

    def __init__(
        self,
        source: Callable[[], AsyncIterator[StoredEvent]] | None = None,
        events: list[StoredEvent] | None = None,
    ) -> None:
        self._source = source
        self.events: list[StoredEvent] = events if events is not None else []

    def __aiter__(self) -> AsyncIterator[StoredEvent]:
        if self._source is None:
            return _iterate(self.events)
        return self._source()

    async def _collect(self) -> Self:
        if self._source is not None:
            self.events = [stored async for stored in self._source()]
            self._source = None
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self._collect().__await__()

    def __len__(self) -> int:
        return len(self.events)


async def _iterate(events: list[StoredEvent]) -> AsyncIterator[StoredEvent]:
    for stored in events:
        yield stored


@dataclass(frozen=True, slots=True)
class CommittedPage:
    """A page of the commit-safe read of all events (see `EventStore.read_committed`)."""

    events: list[StoredEvent]
    cursor: str
    """Opaque; pass it back to `read_committed` to get the events after this page."""


def position_from_cursor(cursor: str | None) -> int:
    """The global position a plain-position cursor stands for (`None` is the start)."""
    if cursor is None or cursor == "":
        return 0
    try:
        position = int(cursor)
    except ValueError:
        raise ValueError(f"Not a cursor of this store: {cursor!r}") from None
    if position < 0:
        raise ValueError(f"Not a cursor of this store: {cursor!r}")
    return position


def coerce_timestamp(value: datetime | float | None) -> datetime | None:
    """Accept a float epoch (deprecated) where a datetime is expected."""
    if value is None or isinstance(value, datetime):
        return value
    warnings.warn(
        "Passing a float epoch as from_timestamp is deprecated; pass a timezone-aware datetime",
        DeprecationWarning,
        stacklevel=3,
    )
    return datetime.fromtimestamp(float(value), UTC)


def in_time_range(occurred_at: datetime, start: datetime | None, end: datetime | None) -> bool:
    """Inclusive timestamp bounds."""
    return (start is None or occurred_at >= start) and (end is None or occurred_at <= end)


def select_stored(
    events: list[StoredEvent],
    options: ReadOptions | None,
    *,
    by_global: bool,
    tenant: UUID | None = None,
) -> list[StoredEvent]:
    """Apply ReadOptions to events in position order (-1 means "from the end"), keeping only
    `tenant`'s events when one is given."""
    if tenant is not None:
        if options is not None and by_global and options.from_position > 0:
            events = events[options.from_position :]  # gap-free: position p is at index p - 1
            options = replace(options, from_position=0)
        events = [s for s in events if s.event.tenant_id == tenant]
    if options is None:
        return events.copy()
    start = options.from_position
    if start == -1:
        chosen = [] if options.direction is ReadDirection.FORWARD else events.copy()
    elif by_global:  # global positions are gap-free: position p is at index p - 1
        chosen = events[start:]
    else:
        chosen = [s for s in events if s.stream_position > start]
    if options.from_timestamp is not None or options.to_timestamp is not None:
        chosen = [
            s for s in chosen
            if in_time_range(s.event.occurred_at, options.from_timestamp, options.to_timestamp)
        ]
    if options.direction is ReadDirection.BACKWARD:
        chosen.reverse()
    if options.limit is not None:
        chosen = chosen[: options.limit]
    return chosen
