"""`SQLiteEventStore`: events in one SQLite file (or in memory), through aiosqlite."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from functools import partial
from time import perf_counter
from typing import Any
from uuid import UUID

from eventsource._attributes import ReadOnly
from eventsource._lifecycle import AsyncContext
from eventsource._optional import optional
from eventsource._sql.common import scope_filter
from eventsource._sql.sqlite import (
    HOP,
    VERSION_SQL,
    SQLiteConnection,
    fetch,
    fetch_with_first_type,
    utc_iso,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import (
    SQLiteNotAvailableError,
    StoreNotConnectedError,
    StreamTombstonedError,
)
from eventsource.observability.tracing import TracingMixin
from eventsource.stores._retention_reads import split_marker
from eventsource.stores._sqlite_append import (
    Also,
    AppendJob,
    append_rows,
    append_rows_now,
    event_rows,
)
from eventsource.stores._sqlite_retention import (
    TOMBSTONED,
    has_retention_table,
    typed_stream,
    visible_clause,
)
from eventsource.stores.base import RowEventStore, StreamQuery
from eventsource.stores.codec import RowLayout
from eventsource.stores.records import (
    AppendResult,
    EventStream,
    ReadDirection,
    ReadOptions,
    ReadResult,
    StoredEvent,
    position_from_cursor,
    successful_append,
)
from eventsource.stores.type_converter import DefaultTypeConverter, TypeConverter

__all__ = ["SQLITE_AVAILABLE", "SQLiteEventStore"]

SQLITE_AVAILABLE: bool = optional("aiosqlite") is not None

logger = logging.getLogger(__name__)

Row = tuple[Any, ...]
# Builds the outbox rows of an append: (aggregate id, type, events) -> writer run in the append.
OutboxWriter = Callable[[UUID, str, Sequence[DomainEvent]], Also]
_Batch = tuple[list[list[Any]], Also | None]  # an append's event rows and its outbox writer

_PAGE = 1000  # rows per query when iterating read_all / read_stream
_EVENT = "id, event_id, event_type, payload, version"  # what get_events needs
_STORED = f"{_EVENT}, aggregate_id, aggregate_type, created_at"  # and what StoredEvent needs
_LAST_ID = 2**63 - 1
_LAYOUT = RowLayout(
    position=0, event_id=1, event_type=2, payload=3, version=4, aggregate_id=5,
    aggregate_type=6, stored_at=7,
)


_INLINE_MAX_EVENTS = 256  # larger appends take the hop: the loop would wait too long
_INLINE_SLOW = 0.005  # seconds: inline appends averaging more than this take the hop ...
_INLINE_BACK_OFF = 500  # ... for this many appends, then inlining is tried again


class _InlineGate:
    """Keeps appends off the event loop's thread while they have been slow there."""

    __slots__ = ("average", "hops_left")

    def __init__(self) -> None:
        self.average = 0.0  # moving average of inline append durations, seconds
        self.hops_left = 0

    def is_open(self) -> bool:
        if self.hops_left:
            self.hops_left -= 1
            return False
        return True

    def took(self, seconds: float) -> None:
        self.average += (seconds - self.average) * 0.1
        if self.average > _INLINE_SLOW:
            logger.info(
                "SQLite appends averaged %.1f ms in the event loop's thread: the next %d run "
                "in the driver's thread", self.average * 1000, _INLINE_BACK_OFF,
            )
            self.average = 0.0
            self.hops_left = _INLINE_BACK_OFF


def _int64(bound: int) -> int:
    """An "after this position / version" bound as an SQLite integer (signed 64-bit): nothing
    comes after the largest one either, so a larger bound selects the same rows."""
    return min(bound, _LAST_ID)


class SQLiteEventStore(AsyncContext, TracingMixin, RowEventStore[_Batch]):
    """Events in an SQLite database: a file for embedded apps and tests, or `":memory:"`.

    Every append is one `BEGIN IMMEDIATE` transaction run whole in the driver's thread: SQLite
    lets one writer at a time hold the write lock, so the version check and the insert are
    atomic across connections and processes, and other writers wait up to `busy_timeout` ms.
    Because writers are serialised and positions (`id`) are assigned under that lock, events
    become visible in position order: the base-class `read_committed` / `committed_lag` with
    plain position cursors are exact here.

    Appends and reads run in the event loop's own thread by default (`inline=True`): an
    append then costs its SQLite work and the commit's fsync, without the hop's two thread
    wake-ups (a sizeable share of a single append), and a page of rows is fetched without
    the driver's thread and the loop's thread taking turns at the GIL (a large share of the
    CPU time of `read_all`). The loop waits for that work instead of running other tasks, so
    the library keeps it short: on a WAL file it uses a second connection of its own that
    never waits for a lock (when another connection holds the write lock the append takes the
    hop; a read never needs that lock), batches of more than 256 events take the hop, and when
    inline appends have averaged over 5 ms (a slow or network disk) the next 500 take the hop
    before inlining is tried again. Rollback-journal files always take the hop. `inline=False`
    sends every call to the driver's thread, for processes whose loop must never wait for a
    disk.
    """

    span_prefix = "sqlite_event_store"
    _layout = _LAYOUT

    def __init__(
        self,
        database: str,
        event_registry: EventRegistry | None = None,
        *,
        wal_mode: bool = True,
        busy_timeout: int = 5000,
        enable_tracing: bool = True,
        type_converter: TypeConverter | None = None,
        uuid_fields: set[str] | None = None,
        string_id_fields: set[str] | None = None,
        auto_detect_uuid: bool = True,
        outbox_enabled: bool = False,
        inline: bool = True,
    ) -> None:
        if not SQLITE_AVAILABLE:
            raise SQLiteNotAvailableError
        self._init_tracing(__name__, enable_tracing)
        self._database = os.fspath(database)
        self._wal_mode = wal_mode
        self._busy_timeout = busy_timeout
        self._registry = event_registry
        self._converter: TypeConverter = type_converter or DefaultTypeConverter(
            uuid_fields, string_id_fields, auto_detect_uuid
        )
        self._link: SQLiteConnection | None = None
        self._outbox_writer: OutboxWriter | None = None
        if outbox_enabled:  # an `event_outbox` row per stored event, in the append's transaction
            from eventsource.repositories.sqlite import outbox_writer

            self._outbox_writer = outbox_writer
        self._inline = inline
        self._inline_gate = _InlineGate()
        self._retention = False  # whether stream reads apply `stream_metadata` (it exists)

    @classmethod
    def with_strict_uuid_detection(
        cls,
        database: str,
        uuid_fields: set[str],
        *,
        event_registry: EventRegistry | None = None,
        wal_mode: bool = True,
        busy_timeout: int = 5000,
        enable_tracing: bool = True,
        outbox_enabled: bool = False,
    ) -> SQLiteEventStore:
        """A store where only `uuid_fields` (of untyped payload fields) become UUIDs."""
        return cls(
            database,
            event_registry,
            wal_mode=wal_mode,
            busy_timeout=busy_timeout,
            enable_tracing=enable_tracing,
            type_converter=DefaultTypeConverter.strict(uuid_fields),
            outbox_enabled=outbox_enabled,
        )

    database: ReadOnly[str] = ReadOnly("_database")
    """The database file path (or ":memory:")."""
    wal_mode: ReadOnly[bool] = ReadOnly("_wal_mode")
    """Whether the database uses write-ahead logging."""
    busy_timeout: ReadOnly[int] = ReadOnly("_busy_timeout")
    """How long (ms) SQLite waits for a lock before failing."""

    def _db_name(self) -> str | None:
        return self._database

    @property
    def outbox_enabled(self) -> bool:
        """Whether appends also write `event_outbox` rows (see docs/outbox.md)."""
        return self._outbox_writer is not None

    inline: ReadOnly[bool] = ReadOnly("_inline")
    """Whether appends and reads may run in the event loop's thread (see the class docs)."""

    @property
    def is_connected(self) -> bool:
        return self._link is not None

    async def _enter_context(self) -> None:
        await self._open()

    async def _exit_context(self) -> None:
        await self.close()

    async def initialize(self) -> None:
        """Connect if needed and create every table the SQLite components use (idempotent)."""
        await (await self._open()).create_tables()
        self._retention = True

    async def close(self) -> None:
        """Close the connection (idempotent); `":memory:"` data goes with it."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()
            logger.debug("Closed SQLite event store %s", self._database)

    async def _open(self) -> SQLiteConnection:
        if self._link is None:
            link = await SQLiteConnection.open(
                self._database,
                wal_mode=self._wal_mode,
                busy_timeout=self._busy_timeout,
                run_now=self._inline,
            )
            if self._link is None:
                self._link = link
                self._retention = await link.run(has_retention_table)
                logger.debug("Opened SQLite event store %s", self._database)
            else:  # another task connected meanwhile
                await link.close()
        return self._link

    def _connected(self) -> SQLiteConnection:
        link = self._link
        if link is None:
            raise StoreNotConnectedError(
                f"SQLiteEventStore({self._database!r}) is not connected: call "
                "`await store.initialize()` or use `async with store:` first"
            )
        return link

    def _encode(
        self, aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent]
    ) -> _Batch:
        self._connected()  # refuse before encoding anything
        rows = event_rows(str(aggregate_id), aggregate_type, events, self._registry)
        writer = self._outbox_writer
        return rows, None if writer is None else writer(aggregate_id, aggregate_type, events)

    async def _write(
        self, aggregate_id: UUID, aggregate_type: str, batch: _Batch, expected_version: int,
        tenant: UUID | None,
    ) -> AppendResult:
        link = self._connected()
        rows, outbox = batch
        job = AppendJob(aggregate_id, rows, expected_version, outbox, tenant, link.file)
        done = None
        gate = self._inline_gate
        if self._inline and len(rows) <= _INLINE_MAX_EVENTS and link.can_run_now and gate.is_open():
            started = perf_counter()
            done = link.run_now(append_rows_now, job)
            gate.took(perf_counter() - started)
        if done is None:
            done = await link.run(append_rows, job)
        version, position = done
        self._signal_commit()  # wake live readers of this store object at once
        return successful_append(version, position)

    async def _select_stream(self, query: StreamQuery) -> EventStream:
        aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp, tenant = query
        link = self._connected()
        clauses, params = _stream_filter(str(aggregate_id), aggregate_type)
        if from_version > 0:
            clauses.append("version > ?")
            params.append(_int64(from_version))
        _time_filter(clauses, params, from_timestamp, to_timestamp)
        head = 0
        if aggregate_type is None:
            sql = f"SELECT {_EVENT} FROM events WHERE {' AND '.join(clauses)} ORDER BY id"
            stored_type, rows = await link.read(
                fetch_with_first_type, sql, params, None if tenant is None else str(tenant)
            )
            aggregate_type = stored_type or "Unknown"
        else:
            sql, params = typed_stream(clauses, params, aggregate_type, self._retention)
            rows, head = split_marker(await link.read(fetch, sql, params), aggregate_id,
                                      aggregate_type, 4)
        keys = await self._keys_of(rows) if self._personal else None  # personal data
        events = self._decode(rows, keys=keys)
        version = rows[-1][4] if rows else max(from_version, head)
        return EventStream(aggregate_id, aggregate_type, events, version)

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        clauses: list[str] = []
        params: list[object] = [str(aggregate_id), aggregate_type]
        scoped = scope_filter(clauses, params) is not None
        sql = f"{VERSION_SQL} AND {clauses[0]}" if scoped else VERSION_SQL
        rows = await self._connected().read(fetch, sql, params)
        return int(rows[0][0] or 0)

    async def _select_type(
        self, aggregate_type: str, tenant_id: UUID | None, start: datetime | None
    ) -> list[DomainEvent]:
        link = self._connected()
        clauses, params = ["aggregate_type = ?"], list[object]([aggregate_type])
        if tenant_id is not None:
            clauses.append("tenant_id = ?")
            params.append(str(tenant_id))
        _time_filter(clauses, params, start, None, after_start=True)
        sql = f"SELECT {_EVENT} FROM events WHERE {' AND '.join(clauses)} ORDER BY timestamp, id"
        rows = await link.read(fetch, sql, params)
        keys = await self._keys_of(rows) if self._personal else None  # personal data
        return self._decode(rows, keys=keys)

    async def event_exists(self, event_id: UUID) -> bool:
        clauses: list[str] = ["event_id = ?"]
        params: list[object] = [str(event_id)]
        scope_filter(clauses, params)
        sql = f"SELECT 1 FROM events WHERE {' AND '.join(clauses)}"
        return bool(await self._connected().read(fetch, sql, params))

    async def get_global_position(self) -> int:
        clauses: list[str] = []
        params: list[object] = []
        where = f" WHERE {clauses[0]}" if scope_filter(clauses, params) is not None else ""
        sql = f"SELECT COALESCE(MAX(id), 0) FROM events{where}"
        return int((await self._connected().read(fetch, sql, params))[0][0])

    async def committed_lag(self, after: str | None = None) -> int:
        clauses: list[str] = ["id > ?"]
        params: list[object] = [_int64(position_from_cursor(after))]
        if scope_filter(clauses, params) is None:
            return await super().committed_lag(after)
        sql = f"SELECT COUNT(*) FROM events WHERE {' AND '.join(clauses)}"
        return int((await self._connected().read(fetch, sql, params))[0][0])

    def _select_all(self, options: ReadOptions, tenant: UUID | None) -> ReadResult:
        clauses: list[str] = []
        params: list[object] = []
        if tenant is not None:
            clauses.append("tenant_id = ?")
            params.append(str(tenant))
        return ReadResult(partial(self._pages, clauses, params, options, "id", "id"))

    def _select_stream_result(
        self, aggregate_id: UUID, aggregate_type: str | None, opts: ReadOptions, tenant: UUID | None
    ) -> ReadResult:
        clauses, params = _stream_filter(str(aggregate_id), aggregate_type)
        # One stream is paged by version along its unique index; several (a bare UUID) by id.
        page_by = "version" if aggregate_type else "id"
        if aggregate_type is not None and self._retention:  # what its metadata shows
            visible_clause(clauses, params, aggregate_type)
            return ReadResult(partial(
                self._retained_pages, aggregate_id, aggregate_type, clauses, params, opts
            ))
        return ReadResult(partial(self._pages, clauses, params, opts, "version", page_by))

    async def _retained_pages(
        self, aggregate_id: UUID, aggregate_type: str, clauses: list[str], params: list[object],
        options: ReadOptions,
    ) -> AsyncIterator[StoredEvent]:
        """`_pages` of a typed stream, after refusing a tombstoned one."""
        if await self._connected().read(fetch, TOMBSTONED, (str(aggregate_id), aggregate_type)):
            raise StreamTombstonedError(aggregate_id, aggregate_type)
        async for stored in self._pages(clauses, params, options, "version", "version"):
            yield stored

    async def _pages(
        self,
        clauses: list[str],
        params: list[object],
        options: ReadOptions,
        position: str,
        page_by: str,
    ) -> AsyncIterator[StoredEvent]:
        """Yield the selected events, fetching `_PAGE` rows per query (one thread hop each)."""
        backward = options.direction is ReadDirection.BACKWARD
        clauses, params = list(clauses), list(params)
        if options.from_position == -1:  # "from the end": nothing forward, everything backward
            if not backward:
                return
        elif options.from_position > 0:
            clauses.append(f"{position} > ?")
            params.append(_int64(options.from_position))
        _time_filter(clauses, params, options.from_timestamp, options.to_timestamp)
        clauses.append(f"{page_by} {'<' if backward else '>'} ?")
        sql = (
            f"SELECT {_STORED} FROM events WHERE {' AND '.join(clauses)} "
            f"ORDER BY {page_by} {'DESC' if backward else 'ASC'} LIMIT ?"
        )
        key = 0 if page_by == "id" else 4
        remaining = options.limit
        link = self._connected()

        def request(after: object) -> asyncio.Future[list[Row]]:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            args = (*params, after, size)
            page: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
            try:
                rows = link.read_now(fetch, sql, args)
            except Exception as exc:  # raised where the page is awaited, as from the hop
                page.set_exception(exc)
                return page
            if rows is HOP:  # the driver's thread fetches it while this page is decoded
                return asyncio.ensure_future(link.run(fetch, sql, args))
            page.set_result(rows)
            return page

        if remaining is not None and remaining <= 0:
            return
        pending = request(_LAST_ID if backward else 0)
        while True:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            rows = await pending
            more = len(rows) == size
            if remaining is not None:
                remaining -= len(rows)
                more = more and remaining > 0
            if more:
                pending = request(rows[-1][key])
            keys = await self._keys_of(rows) if self._personal else None  # personal data
            page, corrupt = self._stored(rows, datetime.fromisoformat, keys)
            for stored in page:
                yield stored
            if corrupt is not None:  # after the events before the bad row, in order
                raise corrupt
            if not more:
                return

    def _locate(self, layout: RowLayout) -> Callable[[Row], str]:
        del layout
        return self._where

    def _where(self, row: Row) -> str:
        return (
            f"at global position {row[0]}, stream version {row[4]}, "
            f"in SQLite database {self._database!r}"
        )


def _stream_filter(aggregate_id: str, aggregate_type: str | None) -> tuple[list[str], list[object]]:
    clauses: list[str] = ["aggregate_id = ?"]
    params: list[object] = [aggregate_id]
    if aggregate_type is not None:
        clauses.append("aggregate_type = ?")
        params.append(aggregate_type)
    scope_filter(clauses, params)
    return clauses, params


def _time_filter(
    clauses: list[str],
    params: list[object],
    start: datetime | None,
    end: datetime | None,
    *,
    after_start: bool = False,
) -> None:
    """Bounds on occurred_at (stored as fixed-width UTC text, so text order works): inclusive,
    or strictly after `start` with `after_start`."""
    if start is not None:
        clauses.append("timestamp > ?" if after_start else "timestamp >= ?")
        params.append(utc_iso(start))
    if end is not None:
        clauses.append("timestamp <= ?")
        params.append(utc_iso(end))
