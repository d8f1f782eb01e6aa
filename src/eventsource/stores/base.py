"""`RowEventStore`: the public methods of the bundled stores, written once over a row-level
backend.

Every public call runs the same steps here: argument checks, the empty batch, the tenant bound
by `tenant_scope` (stamped on appended events, applied to reads), encoding through the codec,
spans and metrics. A backend implements only the row-level methods below: write prepared rows
at an expected version in one transaction, and select the rows of a stream, of an aggregate
type, or of the whole store. Reads turn rows into events through the codec here as well
(`_decode`, `_stored`), so a codec step (upcasting, decryption) applies to every backend.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar
from uuid import UUID

from eventsource._storable_json import has_lone_surrogate
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, default_registry
from eventsource.exceptions import CorruptEventError, OptimisticLockError, StreamTombstonedError
from eventsource.observability.tracing import NO_SPAN
from eventsource.stores.codec import RowLayout, decode_rows, stored_prefix
from eventsource.stores.interface import EventStore
from eventsource.stores.records import (
    AppendResult,
    EventStream,
    ExpectedVersion,
    ReadOptions,
    ReadResult,
    StoredEvent,
    coerce_timestamp,
    parse_stream_id,
)
from eventsource.stores.type_converter import TypeConverter
from eventsource.tenancy import bound_tenant, stamp_events

if TYPE_CHECKING:
    from eventsource.personal.protection import KeyRing, PersonalData

__all__ = ["RowEventStore", "StreamQuery", "check_append_args", "check_expected_version"]

Rows = TypeVar("Rows")
_PAST_THE_END = 2**31 - 1  # a version no stream reaches


# What `get_events` asks a backend for: (aggregate_id, aggregate_type, from_version,
# from_timestamp, to_timestamp, tenant): one stream's (or, with no type, one aggregate id's)
# events after `from_version`, within inclusive time bounds, of `tenant` (None: all). A plain
# tuple: a NamedTuple's constructor would cost a small read a quarter of its time.
StreamQuery: TypeAlias = tuple[UUID, str | None, int, datetime | None, datetime | None, UUID | None]


class RowEventStore(EventStore, Generic[Rows]):
    """An `EventStore` whose public methods are written once; subclasses move rows.

    `Rows` is what `_encode` makes of a batch and `_write` stores: parameter rows for a SQL
    backend, the checked events themselves for the in-memory one.
    """

    _layout: ClassVar[RowLayout | None] = None  # where the backend's SELECT puts each column
    _registry: EventRegistry | None = None
    _converter: TypeConverter | None = None
    _personal: PersonalData | None = None  # personal data: set by `PersonalData.attach`

    @property
    def event_registry(self) -> EventRegistry:
        """The registry appended event types must resolve in (the default one as a fallback)."""
        return self._registry if self._registry is not None else default_registry

    async def append_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        """Append `events` atomically if the stream is at `expected_version`."""
        check_append_args(aggregate_id, aggregate_type, events, expected_version)
        if not events:
            return AppendResult(True, expected_version)
        tenant = bound_tenant()
        if tenant is not None:  # stamp or refuse; the backend checks the stream's owner
            events = stamp_events(events, tenant)
        personal = self._personal  # personal data: one query for the batch's keys, if any
        keys = None if personal is None else await personal.keys_for_events(events)
        if keys is None:
            rows = self._encode(aggregate_id, aggregate_type, events)  # refusals before any write
        else:
            with keys.active():
                rows = self._encode(aggregate_id, aggregate_type, events)
        observed = self._append_span(aggregate_id, aggregate_type, len(events), expected_version)
        try:
            if observed is NO_SPAN:  # nothing records: skip even the no-op context manager
                done = self._write(aggregate_id, aggregate_type, rows, expected_version, tenant)
                return done if isinstance(done, AppendResult) else await done
            with observed:
                done = self._write(aggregate_id, aggregate_type, rows, expected_version, tenant)
                return done if isinstance(done, AppendResult) else await done
        except StreamTombstonedError as refused:  # the database's refusal names no stream
            raise StreamTombstonedError(aggregate_id, aggregate_type) from refused
        except OptimisticLockError:
            # The version check comes before the tombstone check: a read past the stream's end
            # (no events, no span) raises StreamTombstonedError for a tombstoned stream.
            found = self._select_stream(
                (aggregate_id, aggregate_type, _PAST_THE_END, None, None, tenant)
            )
            if not isinstance(found, EventStream):
                await found
            raise

    async def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None = None,
        from_version: int = 0,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
    ) -> EventStream:
        """One stream's events after `from_version`, in version order (inclusive time bounds)."""
        with self._read_span(aggregate_id, aggregate_type, from_version):
            found = self._select_stream((
                aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp,
                bound_tenant(),
            ))
            return found if isinstance(found, EventStream) else await found

    async def get_events_by_type(
        self,
        aggregate_type: str,
        tenant_id: UUID | None = None,
        from_timestamp: datetime | float | None = None,
    ) -> list[DomainEvent]:
        """All events of an aggregate type, oldest first; `from_timestamp` is exclusive."""
        start = coerce_timestamp(from_timestamp)
        bound = bound_tenant()
        if bound is not None:
            if tenant_id is not None and tenant_id != bound:
                return []  # another tenant's events do not exist inside this scope
            tenant_id = bound
        return await self._select_type(aggregate_type, tenant_id, start)

    def read_all(self, options: ReadOptions | None = None) -> ReadResult:
        """Every event in global-position order (async-iterable and awaitable)."""
        # The tenant is bound when called, not when iterated.
        return self._select_all(options or ReadOptions(), bound_tenant())

    def read_stream(self, stream_id: str, options: ReadOptions | None = None) -> ReadResult:
        """One stream (`"<uuid>:<type>"`, or a bare UUID for any type) in version order."""
        aggregate_id, aggregate_type = parse_stream_id(stream_id)
        return self._select_stream_result(
            aggregate_id, aggregate_type, options or ReadOptions(), bound_tenant()
        )

    # -- the codec, for the rows of every backend ---------------------------------------------

    def _decode(
        self, rows: Sequence[Any], layout: RowLayout | None = None, keys: KeyRing | None = None
    ) -> list[DomainEvent]:
        """Rows of the backend's SELECT (`layout`, else the class's) as events; `keys` opens
        personal data (`_keys_of`)."""
        chosen = layout or self._layout
        assert chosen is not None  # a SQL backend sets `_layout`
        if keys is not None:
            with keys.active():
                return self._decode(rows, layout)
        return decode_rows(rows, chosen, self._registry, self._converter, self._locate(chosen))

    def _stored(
        self,
        rows: Sequence[Any],
        stored_at: Callable[[Any], datetime] = lambda value: value,
        keys: KeyRing | None = None,
    ) -> tuple[list[StoredEvent], CorruptEventError | None]:
        """A page of rows as StoredEvents, up to the first that cannot be read, and its error
        (see `codec.stored_prefix`); readers hand the events over, then raise the error."""
        layout = self._layout
        assert layout is not None  # a SQL backend sets `_layout`
        if keys is not None:
            with keys.active():
                return self._stored(rows, stored_at)
        return stored_prefix(
            rows, layout, self._registry, self._converter, stored_at, self._locate(layout)
        )

    async def _keys_of(
        self, rows: Sequence[Any], layout: RowLayout | None = None
    ) -> KeyRing | None:
        """The keys a page of rows needs (one key-store query at most); call it only when a
        `PersonalData` is attached (`self._personal`), so other stores pay nothing."""
        chosen = layout or self._layout
        assert self._personal is not None
        assert chosen is not None
        return await self._personal.keys_for_rows(rows, chosen, self._registry)

    def _locate(self, layout: RowLayout) -> Callable[[Any], str] | None:
        """What a `CorruptEventError` adds about where a bad row lies (None: nothing)."""
        del layout
        return None

    # -- the row-level interface ----------------------------------------------------------------

    @abstractmethod
    def _encode(
        self, aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent]
    ) -> Rows:
        """What `_write` stores for a checked, tenant-stamped batch; raise here (before any
        write) what no backend could store (`SerializationError`)."""

    @abstractmethod
    def _write(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        rows: Rows,
        expected_version: int,
        tenant: UUID | None,
    ) -> Awaitable[AppendResult] | AppendResult:
        """In one transaction: check the expected version (`check_expected_version`) and, with
        a `tenant`, that the stream is that tenant's (`check_stream_owner`); store the rows
        whose event ids are not stored yet; wake readers (`_signal_commit`).

        A coroutine for a backend with I/O. A backend without (in memory) returns the result
        itself: the write is then one synchronous step, atomic on the event loop, and spares
        the single append a coroutine (a tenth of its cost)."""

    @abstractmethod
    def _select_stream(self, query: StreamQuery) -> EventStream | Awaitable[EventStream]:
        """`get_events` for the query's bound tenant (None: every tenant). Like `_write`, a
        backend without I/O may answer synchronously, sparing the read a coroutine."""

    @abstractmethod
    async def _select_type(
        self, aggregate_type: str, tenant_id: UUID | None, start: datetime | None
    ) -> list[DomainEvent]:
        """`get_events_by_type` with the tenant already settled."""

    @abstractmethod
    def _select_all(self, options: ReadOptions, tenant: UUID | None) -> ReadResult:
        """`read_all` for the bound `tenant` (None: every tenant)."""

    @abstractmethod
    def _select_stream_result(
        self, aggregate_id: UUID, aggregate_type: str | None, opts: ReadOptions, tenant: UUID | None
    ) -> ReadResult:
        """`read_stream` for the bound `tenant` (None: every tenant)."""


def check_append_args(
    aggregate_id: object, aggregate_type: object, events: Sequence[object], expected_version: object
) -> None:
    """Reject bad input to `append_events` before anything is written; errors name the culprit."""
    if not isinstance(aggregate_id, UUID):
        raise TypeError(f"aggregate_id must be a UUID, got {type(aggregate_id).__name__}: "
                        f"{aggregate_id!r}")
    if not isinstance(aggregate_type, str) or not aggregate_type:
        raise TypeError(f"aggregate_type must be a non-empty str, got {aggregate_type!r}")
    if "\x00" in aggregate_type or has_lone_surrogate(aggregate_type):
        raise ValueError(
            "aggregate_type must not hold the NUL character or lone surrogates (no database "
            f"stores them), got {aggregate_type!r}"
        )
    if type(expected_version) is not int and (
        isinstance(expected_version, bool) or not isinstance(expected_version, int)
    ):
        raise TypeError(f"expected_version must be an int, got {expected_version!r}")
    if expected_version < ExpectedVersion.STREAM_EXISTS:
        raise ValueError(
            "expected_version must be >= -2 (ExpectedVersion.STREAM_EXISTS), "
            f"got {expected_version}"
        )
    # `type(...) is list` first: the Sequence ABC check is slow and this runs on every append.
    if type(events) is not list and (
        isinstance(events, str | bytes) or not isinstance(events, Sequence)
    ):
        raise TypeError(f"events must be a list of DomainEvent, got {type(events).__name__}")
    for event in events:
        if not isinstance(event, DomainEvent) or (
            event.aggregate_id is not aggregate_id and event.aggregate_id != aggregate_id
        ):
            _reject_event(events, event, aggregate_id)


def _reject_event(events: Sequence[object], event: object, aggregate_id: UUID) -> None:
    index = next(i for i, candidate in enumerate(events) if candidate is event)
    if not isinstance(event, DomainEvent):
        raise TypeError(
            f"events[{index}] is a {type(event).__name__}, not a DomainEvent: {event!r:.200}"
        )
    raise ValueError(
        f"events[{index}] ({event.event_type} {event.event_id}) belongs to aggregate "
        f"{event.aggregate_id}, not to {aggregate_id} given to append_events"
    )


def check_expected_version(aggregate_id: UUID, expected: int, current: int) -> None:
    """Raise OptimisticLockError unless a stream at `current` may be appended to."""
    if expected == ExpectedVersion.ANY:
        return
    ok = current > 0 if expected == ExpectedVersion.STREAM_EXISTS else current == expected
    if not ok:  # NO_STREAM is 0, so the exact comparison covers it
        raise OptimisticLockError(aggregate_id, expected, current)
