"""The event-store contract: data types and the `EventStore` base class."""

from __future__ import annotations

import asyncio
import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar, Final, Protocol, Self, runtime_checkable
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.observability.attributes import (
    ATTR_AGGREGATE_ID,
    ATTR_AGGREGATE_TYPE,
    ATTR_DB_NAME,
    ATTR_DB_OPERATION,
    ATTR_DB_SYSTEM,
    ATTR_EVENT_COUNT,
    ATTR_EXPECTED_VERSION,
    ATTR_FROM_VERSION,
)
from eventsource.observability.metrics import METRICS, AppendObservation, providers_unset
from eventsource.observability.tracing import NO_SPAN, TRACES, span

__all__ = [
    "AppendResult",
    "CommittedPage",
    "EventPublisher",
    "EventStore",
    "EventStream",
    "ExpectedVersion",
    "ReadDirection",
    "ReadOptions",
    "ReadResult",
    "StoredEvent",
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
        # costs 40 % of the frozen dataclass's __init__. `events=None` means no events, as in
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
    """Build a `StoredEvent` through its slots: the frozen dataclass `__init__` costs 3x more."""
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


@runtime_checkable
class EventPublisher(Protocol):
    """Anything that can publish stored events (every event bus)."""

    async def publish(self, events: list[DomainEvent]) -> None: ...


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


class EventStore(ABC):
    """Streams of events keyed by `(aggregate_id, aggregate_type)`, with global positions.

    See the package documentation for the rules every backend follows; the contract suite in
    `eventsource.testing.contract` checks them.
    """

    span_prefix: ClassVar[str] = "event_store"

    @abstractmethod
    async def append_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        """Append `events` atomically if the stream is at `expected_version`."""

    @abstractmethod
    async def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None = None,
        from_version: int = 0,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
    ) -> EventStream:
        """One stream's events after `from_version`, in version order (inclusive time bounds)."""

    @abstractmethod
    async def get_events_by_type(
        self,
        aggregate_type: str,
        tenant_id: UUID | None = None,
        from_timestamp: datetime | float | None = None,
    ) -> list[DomainEvent]:
        """All events of an aggregate type, oldest first; `from_timestamp` is exclusive."""

    @abstractmethod
    async def event_exists(self, event_id: UUID) -> bool:
        """True if an event with this id is stored."""

    async def get_global_position(self) -> int:
        """The highest global position, 0 when the store is empty.

        Not abstract: eventsource-py 0.2.0 had no such method, so stores written for it define
        only `read_all`, if anything. This default reads the newest event through `read_all`;
        every bundled store overrides it with one query.
        """
        if type(self).read_all is EventStore.read_all:
            raise NotImplementedError(
                f"{type(self).__name__} implements neither get_global_position() nor "
                "read_all(): implement one of them to give the store global positions"
            )
        newest = await self.read_all(
            ReadOptions(direction=ReadDirection.BACKWARD, from_position=-1, limit=1)
        )
        return newest.events[0].global_position if newest.events else 0

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        """The stream's version (its number of events), 0 if it does not exist."""
        return (await self.get_events(aggregate_id, aggregate_type)).version

    def read_all(self, options: ReadOptions | None = None) -> ReadResult:
        """Every event in global-position order (async-iterable and awaitable)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement read_all")

    def read_stream(self, stream_id: str, options: ReadOptions | None = None) -> ReadResult:
        """One stream (`"<uuid>:<type>"`, or a bare UUID for any type) in version order.

        This default serves stores that implement only the abstract methods (as eventsource-py
        0.2.0 let them): one `get_events` call, the events numbered by their place in the
        stream. Such a store knows no global positions (they are 0) nor when an event was
        stored (`stored_at` is its `occurred_at`). The bundled stores override it.
        """
        aggregate_id, aggregate_type = parse_stream_id(stream_id)
        opts = options or ReadOptions()

        async def source() -> AsyncIterator[StoredEvent]:
            for stored in await self._stream_from_get_events(aggregate_id, aggregate_type, opts):
                yield stored

        return ReadResult(source)

    async def _stream_from_get_events(
        self, aggregate_id: UUID, aggregate_type: str | None, options: ReadOptions
    ) -> list[StoredEvent]:
        from eventsource.stores.in_memory import select_stored  # the specification's rules

        after = max(options.from_position, 0)
        stream = await self.get_events(aggregate_id, aggregate_type, from_version=after)
        stream_id = stream_id_of(aggregate_id, stream.aggregate_type)
        stored = [
            make_stored_event(event, stream_id, after + number, 0, event.occurred_at)
            for number, event in enumerate(stream.events, start=1)
        ]
        return select_stored(stored, options, by_global=False)

    async def read_committed(self, after: str | None = None, limit: int = 1000) -> CommittedPage:
        """The next events in commit-safe order after the opaque cursor `after`.

        A reader that keeps calling this with the cursor of the last page receives every
        committed event exactly once, even while concurrent writers commit out of position
        order. This default serves stores whose writers commit in position order (one writer at
        a time: in-memory, SQLite); PostgreSQL overrides it.

        A row that cannot be read raises `CorruptEventError` with its `page` (the events
        before it) and `cursor` (to read on past it) set.
        """
        from eventsource.stores._rules import CorruptEventError  # _rules imports this module

        position = position_from_cursor(after)
        events: list[StoredEvent] = []
        corrupt: CorruptEventError | None = None
        try:
            async for stored in self.read_all(ReadOptions(from_position=position, limit=limit)):
                events.append(stored)
        except CorruptEventError as error:
            corrupt = error
        last = events[-1].global_position if events else position
        page = CommittedPage(events, str(last))
        if corrupt is not None:  # the readable events before the row, and a cursor past it
            if corrupt.position is not None:
                corrupt.resumable(page, str(corrupt.position))
            raise corrupt
        return page

    async def committed_lag(self, after: str | None = None) -> int:
        """How many stored events a reader at cursor `after` has not read yet."""
        return max(0, await self.get_global_position() - position_from_cursor(after))

    async def head_cursor(self) -> str:
        """A cursor after every event committed so far (a reader starting "at the end")."""
        return str(await self.get_global_position())

    async def cursor_for_position(self, position: int) -> str:
        """A cursor just after the event at global `position` (0: before everything)."""
        if position < 0:
            raise ValueError(f"position must be >= 0, got {position}")
        return str(position)

    async def wait_for_new_events(self, timeout: float) -> bool:
        """Wait until events may have been committed since the call, or `timeout` seconds.

        True when woken by a commit. Readers use it to follow the store live without busy
        polling. This default is woken by appends made through this store object; backends
        that can hear other processes' commits (PostgreSQL LISTEN/NOTIFY) override it.
        """
        # The signal is sticky: a commit made while the reader was busy reading wakes its next
        # wait at once (at worst one needless re-read), so no wake-up is ever lost in between.
        waiter = self.__dict__.get("_commit_signal")
        if waiter is None:
            waiter = self.__dict__["_commit_signal"] = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await waiter.wait()
        except TimeoutError:
            return False
        waiter.clear()
        return True

    def _signal_commit(self) -> None:
        """Wake readers blocked in `wait_for_new_events` (call after a successful append)."""
        waiter = self.__dict__.get("_commit_signal")
        if waiter is None:
            waiter = self.__dict__["_commit_signal"] = asyncio.Event()
        waiter.set()

    @property
    def db_system(self) -> str:
        """`db.system` of this store's spans and metrics: the span prefix without
        `_event_store` (`in_memory`, `sqlite`, `postgresql`)."""
        return self.span_prefix.removesuffix("_event_store")

    def _db_name(self) -> str | None:
        """`db.name` of this store's spans (the database file or name), if it has one."""
        return None

    def _append_span(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        count: int,
        expected_version: int | None = None,
    ) -> AbstractContextManager[object]:
        """Wraps an append: the `<span_prefix>.append_events` span when tracing records, the
        append metrics when a meter provider records; the shared no-op otherwise.

        Every backend wraps its write in this, so names, attributes and instruments are set in
        one place. Nothing is built unless something records.
        """
        if getattr(self, "_tracer", None) is None or (  # enable_tracing=False: no telemetry
            not (TRACES.live or METRICS.live) and providers_unset()
        ):
            return NO_SPAN
        tracing = TRACES.live or TRACES.refresh()
        measuring = METRICS.live or METRICS.refresh()
        if not (tracing or measuring):
            return NO_SPAN
        span_cm = None
        if tracing:
            span_cm = self._span(
                "append_events", "INSERT", aggregate_id, aggregate_type, ATTR_EVENT_COUNT, count,
                {ATTR_EXPECTED_VERSION: expected_version},
            )
        return AppendObservation(span_cm, self.db_system, count, measuring)

    def _read_span(
        self, aggregate_id: UUID, aggregate_type: str | None, from_version: int
    ) -> AbstractContextManager[object]:
        """The `<span_prefix>.get_events` span, or the shared no-op when not tracing."""
        if getattr(self, "_tracer", None) is None or not (TRACES.live or TRACES.refresh()):
            return NO_SPAN
        return self._span(
            "get_events", "SELECT", aggregate_id, aggregate_type, ATTR_FROM_VERSION, from_version
        )

    def _span(
        self,
        operation: str,
        db_operation: str,
        aggregate_id: UUID,
        aggregate_type: str | None,
        attribute: str,
        value: object,
        extra: dict[str, object] | None = None,
    ) -> AbstractContextManager[object]:
        attributes: dict[str, object] = {
            ATTR_AGGREGATE_ID: aggregate_id,
            ATTR_AGGREGATE_TYPE: aggregate_type,
            attribute: value,
            ATTR_DB_SYSTEM: self.db_system,
            ATTR_DB_NAME: self._db_name(),
            ATTR_DB_OPERATION: db_operation,
        }
        if extra:
            attributes.update(extra)
        return span(getattr(self, "_tracer", None), f"{self.span_prefix}.{operation}", attributes)

    async def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release resources (no-op by default)."""


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
