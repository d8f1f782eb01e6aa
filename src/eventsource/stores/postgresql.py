"""`PostgreSQLEventStore`: the production event store, over an SQLAlchemy asyncpg engine.

Appends. One append is one SQL statement, hence one round trip and one transaction: it reads
the stream version, checks the expected version, skips event ids already stored and inserts the
rest from arrays (plus their outbox rows when enabled). Writers on different streams run in
parallel. The unique `(aggregate_id, aggregate_type, version)` constraint settles races on one
stream: the loser re-runs the statement, which then reports the true version (an
`OptimisticLockError`), or, for `ExpectedVersion.ANY`, appends after the winner.

Reading everything, commit-safely: `read_committed` delivers rows in `(tx_id, id)` order,
only below the horizon of transactions still running, so a reader tailing the store never skips
a late commit (see `eventsource.stores._postgresql_tailing`).

Following live. Appends wake readers of this store object at once, and other processes through
LISTEN/NOTIFY (`eventsource._sql.postgresql_signals`): `wait_for_new_events` returns within
milliseconds of any process's commit, falling back to its timeout when LISTEN is unavailable.
When a reader catches up but committed events wait behind the horizon (an older transaction is
still open), waiters are woken again after a short, growing delay (5 ms doubling to 1 s), as the
transaction holding the horizon need not be an append that notifies when it ends.

Connections. Appends and reads use a few asyncpg connections of the store's own
(`DriverPool`, as many as the engine's `pool_size`; see `eventsource._sql.postgresql_pool`),
closed with `close()` or when the engine is disposed. An operation whose session the server or
the network ended runs once more on a new connection; an append run again that way reports its
own events as appended (the stored event ids keep it from writing twice). `timeout` (10 s by
default) bounds each operation; running longer raises `EventStoreTimeoutError`.

Requires PostgreSQL 13+ (`xid8`). Table names are unqualified: the connection's `search_path`
chooses the schema. The tables are created, or upgraded in place, on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar
from uuid import UUID

from eventsource._retention_view import view
from eventsource._sql import postgresql_events as queries
from eventsource._sql.postgresql import (
    Operation,
    Row,
    apply_schema,
    engine_of,
    schema_is_current,
)
from eventsource._sql.postgresql_pool import DriverPool, check_timeout
from eventsource._sql.postgresql_signals import CommitChannel, channel_name
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import StoreNotConnectedError
from eventsource.observability.tracing import TracingMixin
from eventsource.stores._postgresql_append import (
    append_operation,
    append_result,
    append_statements,
)
from eventsource.stores._postgresql_tailing import (
    NOT_MAX_ID,
    PagesAhead,
    cursor_of,
    parse_cursor,
)
from eventsource.stores._retention_reads import split_marker
from eventsource.stores.base import RowEventStore, StreamQuery
from eventsource.stores.codec import RowLayout, encode_payloads
from eventsource.stores.records import (
    AppendResult,
    CommittedPage,
    EventStream,
    ReadDirection,
    ReadOptions,
    ReadResult,
    StoredEvent,
)
from eventsource.stores.type_converter import DefaultTypeConverter, TypeConverter
from eventsource.tenancy import bound_tenant

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

__all__ = ["PostgreSQLEventStore"]

T = TypeVar("T")
_Batch = tuple[Sequence[DomainEvent], list[str]]  # an append's events and their JSON payloads

_LAYOUT = RowLayout(
    position=0, event_id=1, event_type=2, payload=7, version=5, aggregate_id=3,
    aggregate_type=4, stored_at=6,
)
_BY_TYPE_LAYOUT = RowLayout(
    position=-1, event_id=0, event_type=1, payload=2, version=-1, aggregate_id=-1,
    aggregate_type=-1, stored_at=-1,
)

_PAGE = 5000


class PostgreSQLEventStore(TracingMixin, RowEventStore["_Batch"]):
    """Events in a PostgreSQL `events` table, reached through an SQLAlchemy `async_sessionmaker`.

    See the module documentation for how appends stay atomic and how `read_committed` follows
    the whole store without skipping late commits.
    """

    span_prefix = "postgresql_event_store"
    _layout = _LAYOUT

    def __init__(
        self,
        session_factory: async_sessionmaker[Any],
        *,
        event_registry: EventRegistry | None = None,
        outbox_enabled: bool = False,
        enable_tracing: bool = True,
        type_converter: TypeConverter | None = None,
        uuid_fields: set[str] | None = None,
        string_id_fields: set[str] | None = None,
        auto_detect_uuid: bool = True,
        timeout: float | None = 10.0,
    ) -> None:
        check_timeout(timeout)
        self._init_tracing(__name__, enable_tracing)
        self._session_factory = session_factory
        self._engine = engine_of(session_factory)
        self._registry = event_registry
        self._outbox_enabled = outbox_enabled
        self._converter: TypeConverter = type_converter or DefaultTypeConverter(
            uuid_fields, string_id_fields, auto_detect_uuid
        )
        self._append_statements = append_statements(outbox_enabled)
        self._tables = ("events", "outbox", "retention") if outbox_enabled else (
            "events", "retention"
        )
        self._timeout = timeout
        self._ready = False
        self._closed = False
        self._ready_lock: asyncio.Lock | None = None
        self._pool: DriverPool | None = None
        self._signals: CommitChannel | None = None
        self._ahead = PagesAhead(self._committed_rows, self._signal_commit)

    @classmethod
    def with_strict_uuid_detection(
        cls,
        session_factory: async_sessionmaker[Any],
        uuid_fields: set[str],
        *,
        event_registry: EventRegistry | None = None,
        outbox_enabled: bool = False,
        enable_tracing: bool = True,
    ) -> Self:
        """A store where only `uuid_fields` (no `*_id` guessing) become UUIDs in untyped fields."""
        return cls(
            session_factory,
            event_registry=event_registry,
            outbox_enabled=outbox_enabled,
            enable_tracing=enable_tracing,
            type_converter=DefaultTypeConverter.strict(uuid_fields),
        )

    @property
    def session_factory(self) -> async_sessionmaker[Any]:
        return self._session_factory

    def _db_name(self) -> str | None:
        return self._engine.url.database

    @property
    def outbox_enabled(self) -> bool:
        return self._outbox_enabled

    async def initialize(self) -> None:
        """Create the tables, or upgrade existing ones in place (idempotent; also done lazily)."""
        self._closed = False
        await self._prepare()

    async def close(self) -> None:
        """Close the store's own connections (idempotent); the engine stays the caller's."""
        self._closed = True
        await self._ahead.close()
        signals, self._signals = self._signals, None
        pool, self._pool = self._pool, None
        self._ready = False
        if signals is not None:
            await signals.close()
        if pool is not None:
            await pool.close()

    async def _prepare(self) -> None:
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self._ready:
                return
            what = "creating the tables"
            if not await self._run(what, lambda conn: schema_is_current(conn, self._tables)):
                # Untimed: an upgrade may rewrite a large table.
                async with self._driver_pool().connection(what, timed=False) as conn:
                    await apply_schema(conn, self._tables)
            home = await self._run(what, lambda conn: conn.fetchval(queries.HOME))
            assert self._pool is not None  # made by _run
            self._signals = CommitChannel(self._pool, channel_name(str(home)), self._signal_commit)
            self._ready = True

    async def _run(self, what: str, operation: Operation[T], *, stable_plans: bool = False) -> T:
        """`operation` on one of the store's connections, run again once on a new connection
        if the first one dies under it (`DriverPool.run`)."""
        return await self._driver_pool().run(what, operation, stable_plans=stable_plans)

    def _driver_pool(self) -> DriverPool:
        if self._closed:
            raise StoreNotConnectedError("PostgreSQLEventStore is closed; call initialize()")
        pool = self._pool
        if pool is None:
            pool = self._pool = DriverPool.for_engine(self._engine, self._timeout)
        return pool

    async def _ensure_ready(self) -> None:
        if self._closed:
            raise StoreNotConnectedError("PostgreSQLEventStore is closed; call initialize()")
        if not self._ready:
            await self._prepare()

    # -- appends --------------------------------------------------------------------------

    def _encode(
        self, aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent]
    ) -> _Batch:
        return events, encode_payloads(events, self._registry)

    async def _write(
        self, aggregate_id: UUID, aggregate_type: str, batch: _Batch, expected_version: int,
        tenant: UUID | None,
    ) -> AppendResult:
        await self._ensure_ready()
        events, payloads = batch
        append = append_operation(
            self._append_statements, aggregate_id, aggregate_type, events, payloads,
            expected_version, tenant,
        )
        # On a connection whose cached generic plan is index lookups whatever the table's size
        # when it was planned (see `DriverPool.connection`).
        row = await self._run("append_events", append, stable_plans=True)
        result = append_result(row, aggregate_id, aggregate_type, expected_version, tenant)
        if row[2] is not None:  # events were stored
            self._signal_commit()
            if self._signals is not None:
                await asyncio.shield(self._signals.notify())
        return result

    # -- one stream ---------------------------------------------------------------------------

    async def _select_stream(self, query: StreamQuery) -> EventStream:
        aggregate_id, aggregate_type, from_version, _, _, tenant = query
        rows, head = await self._stream_rows(query)
        keys = await self._keys_of(rows) if self._personal else None  # personal data
        events = self._decode(rows, keys=keys)
        if aggregate_type is None:
            aggregate_type = rows[0][4] if rows else await self._first_type(aggregate_id, tenant)
        version = rows[-1][5] if rows else max(from_version, head)
        return EventStream(aggregate_id, aggregate_type, events, version)

    async def _stream_rows(self, query: StreamQuery) -> tuple[list[Row], int]:
        """The stream's visible rows, and its head version when it has retention metadata."""
        aggregate_id, aggregate_type, after_version, from_timestamp, to_timestamp, tenant = query
        await self._ensure_ready()
        statements = queries.STREAM if aggregate_type is not None else queries.STREAM_ANY_TYPE
        args: tuple[object, ...] = (
            aggregate_id, from_timestamp, to_timestamp, aggregate_type, after_version
        )
        if aggregate_type is not None:
            args += view()
        if tenant is not None:
            args += (tenant,)
        # A typed read's plan is the same index lookups whatever the values: one generic plan
        # per connection spares planning its retention parts at every read.
        rows = await self._run(
            "get_events", lambda conn: conn.fetch(statements[tenant is not None], *args),
            stable_plans=aggregate_type is not None,
        )
        if aggregate_type is None:
            return rows, 0
        return split_marker(rows, aggregate_id, aggregate_type, 5)

    async def _first_type(self, aggregate_id: UUID, tenant: UUID | None) -> str:
        found = await self._value("get_events", queries.FIRST_TYPE, tenant, aggregate_id)
        return str(found) if found is not None else "Unknown"

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        version = queries.STREAM_VERSION
        tenant = bound_tenant()
        return int(await self._value("get_stream_version", version, tenant, aggregate_id,
                                     aggregate_type))

    async def _value(
        self, what: str, statements: tuple[str, str], tenant: UUID | None, *args: object
    ) -> Any:
        """The one value a statement pair selects, for `tenant` (its last argument) or all."""
        if tenant is not None:
            args += (tenant,)
        await self._ensure_ready()
        sql = statements[tenant is not None]
        return await self._run(what, lambda conn: conn.fetchval(sql, *args))

    def _select_stream_result(
        self, aggregate_id: UUID, aggregate_type: str | None, opts: ReadOptions, tenant: UUID | None
    ) -> ReadResult:
        async def source() -> AsyncIterator[StoredEvent]:
            if opts.from_position == -1 and opts.direction is ReadDirection.FORWARD:
                return
            rows, _ = await self._stream_rows((
                aggregate_id, aggregate_type, max(opts.from_position, 0),
                opts.from_timestamp, opts.to_timestamp, tenant,
            ))
            if opts.direction is ReadDirection.BACKWARD:
                rows.reverse()
            if opts.limit is not None:
                rows = rows[: opts.limit]
            keys = await self._keys_of(rows) if self._personal else None  # personal data
            page, corrupt = self._stored(rows, keys=keys)
            for stored in page:
                yield stored
            if corrupt is not None:  # after the events before the bad row
                raise corrupt

        return ReadResult(source)

    # -- the whole store ----------------------------------------------------------------------

    def read_all(self, options: ReadOptions | None = None) -> ReadResult:
        """Every event in global-position order (async-iterable and awaitable).

        Not the safe way to tail the store while writers are active: a transaction can commit
        an event at a position below one already read, and a reader continuing from the last
        position it saw would skip it. Tail with `read_committed` instead.
        """
        return super().read_all(options)

    def _select_all(self, opts: ReadOptions, tenant: UUID | None) -> ReadResult:
        async def source() -> AsyncIterator[StoredEvent]:
            backward = opts.direction is ReadDirection.BACKWARD
            if opts.from_position == -1 and not backward:
                return
            floor = max(opts.from_position, 0)
            mark = NOT_MAX_ID if backward else floor
            left = opts.limit
            while left is None or left > 0:
                size = _PAGE if left is None else min(_PAGE, left)
                rows = await self._page(backward, mark, floor, size, opts, tenant)
                if not rows:
                    return
                mark = rows[-1][0]
                if left is not None:
                    left -= len(rows)
                keys = await self._keys_of(rows) if self._personal else None  # personal data
                page, corrupt = self._stored(rows, keys=keys)
                for stored in page:
                    yield stored
                if corrupt is not None:  # after the events before the bad row
                    raise corrupt
                if len(rows) < size:
                    return

        return ReadResult(source)

    async def _page(
        self,
        backward: bool,
        mark: int,
        floor: int,
        size: int,
        opts: ReadOptions,
        tenant: UUID | None,
    ) -> list[Row]:
        await self._ensure_ready()
        args: tuple[object, ...] = (mark, opts.from_timestamp, opts.to_timestamp, size)
        if backward:
            args += (floor,)
        if tenant is not None:
            args += (tenant,)
        statements = queries.ALL_BACKWARD if backward else queries.ALL_FORWARD
        return await self._run(
            "read_all", lambda conn: conn.fetch(statements[tenant is not None], *args)
        )

    async def read_committed(self, after: str | None = None, limit: int = 1000) -> CommittedPage:
        """The next events in commit-safe `(transaction, position)` order after cursor `after`.

        Only events of transactions older than every running one are returned, so no event can
        later appear before the returned cursor: passing it back delivers every committed event
        exactly once. Cursors look like `"<xid>:<position>"`; treat them as opaque. A row that
        cannot be read raises `CorruptEventError` with its `page` and `cursor` set.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        tx_id, position = parse_cursor(after)
        tenant = bound_tenant()
        await self._ensure_ready()
        rows = await self._ahead.prefetched(tx_id, position, limit, tenant)
        if rows is None:
            rows = await self._committed_rows(tx_id, position, limit, tenant)
        held_back = False
        if rows and (rows[-1][0] is None or any(row[0] is None for row in rows)):
            rows = [row for row in rows if row[0] is not None]
            held_back = True
        if len(rows) < limit:  # caught up: the reader is about to wait
            self._ahead.caught_up(held_back)
        if not rows:
            return CommittedPage([], f"{tx_id}:{position}")
        last_tx, last_position = int(rows[-1][8]), rows[-1][0]
        if len(rows) == limit:  # catching up: fetch the next page while this one is decoded
            self._ahead.prefetch(last_tx, last_position, limit, tenant)
        keys = await self._keys_of(rows) if self._personal else None  # personal data
        stored, corrupt = self._stored(rows, keys=keys)
        if corrupt is not None:  # the readable events before the row, and a cursor past it
            before = cursor_of(rows[len(stored) - 1]) if stored else f"{tx_id}:{position}"
            raise corrupt.resumable(CommittedPage(stored, before), cursor_of(rows[len(stored)]))
        return CommittedPage(stored, f"{last_tx}:{last_position}")

    async def _committed_rows(
        self, tx_id: int, position: int, limit: int, tenant: UUID | None
    ) -> list[Row]:
        args: tuple[object, ...] = (str(tx_id), position, limit)
        if tenant is not None:
            args += (tenant,)
        return await self._run(
            "read_committed", lambda c: c.fetch(queries.COMMITTED[tenant is not None], *args)
        )

    async def committed_lag(self, after: str | None = None) -> int:
        """How many stored events come after cursor `after`, including any held back by an
        open transaction."""
        tx_id, position = parse_cursor(after)
        lag = await self._value("committed_lag", queries.LAG, bound_tenant(), str(tx_id), position)
        return int(lag)

    async def head_cursor(self) -> str:
        """A cursor after every event committed so far, and before any committed later.

        Events already committed behind an older open transaction are still delivered.
        """
        await self._ensure_ready()
        horizon = int(await self._run("head_cursor", lambda conn: conn.fetchval(queries.HEAD)))
        return f"{max(horizon - 1, 0)}:{NOT_MAX_ID}"

    async def cursor_for_position(self, position: int) -> str:
        """A cursor just after the event at global `position` in commit-safe order (or after
        the last event below it)."""
        if position < 0:
            raise ValueError(f"position must be >= 0, got {position}")
        if position == 0:
            return "0:0"
        await self._ensure_ready()
        row = await self._run(
            "cursor_for_position", lambda conn: conn.fetchrow(queries.AT_POSITION, position)
        )
        return "0:0" if row is None else f"{row[0]}:{row[1]}"

    async def wait_for_new_events(self, timeout: float) -> bool:
        """Wait until any process may have committed events, or `timeout` seconds.

        Woken by LISTEN/NOTIFY (see the module documentation), by appends through this object,
        and, after a read left committed events behind an older open transaction, by a short
        re-check timer. Without LISTEN only the last two, or the timeout (polling), wake it.
        """
        await self._ensure_ready()
        signals = self._signals
        if signals is not None:
            await signals.listen()
        woke = await super().wait_for_new_events(timeout)
        if not woke and signals is not None:
            await signals.check()
        return woke

    async def _select_type(
        self, aggregate_type: str, tenant_id: UUID | None, start: datetime | None
    ) -> list[DomainEvent]:
        await self._ensure_ready()
        args = (aggregate_type, tenant_id, start)
        rows = await self._run("get_events_by_type", lambda c: c.fetch(queries.BY_TYPE, *args))
        keys = await self._keys_of(rows, _BY_TYPE_LAYOUT) if self._personal else None
        return self._decode(rows, _BY_TYPE_LAYOUT, keys)

    async def event_exists(self, event_id: UUID) -> bool:
        return bool(await self._value("event_exists", queries.EXISTS, bound_tenant(), event_id))

    async def get_global_position(self) -> int:
        last = await self._value("get_global_position", queries.GLOBAL_POSITION, bound_tenant())
        return int(last)
