"""The event-store contract: the `EventStore` base class (its data types live in `records`)."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.exceptions import CorruptEventError
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
from eventsource.stores.records import (
    AppendResult,
    CommittedPage,
    EventStream,
    ExpectedVersion,
    ReadDirection,
    ReadOptions,
    ReadResult,
    StoredEvent,
    make_stored_event,
    parse_stream_id,
    position_from_cursor,
    select_stored,
    stream_id_of,
)

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


@runtime_checkable
class EventPublisher(Protocol):
    """Anything that can publish stored events (every event bus)."""

    async def publish(self, events: list[DomainEvent]) -> None: ...



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
