"""`PostgreSQLEventStore`: the production event store, over an SQLAlchemy asyncpg engine.

Appends. One append is one SQL statement, hence one round trip and one transaction: it reads
the stream version, checks the expected version, skips event ids already stored and inserts the
rest from arrays (plus their outbox rows when enabled). Writers on different streams run in
parallel. The unique `(aggregate_id, aggregate_type, version)` constraint settles races on one
stream: the loser re-runs the statement, which then reports the true version (an
`OptimisticLockError`), or, for `ExpectedVersion.ANY`, appends after the winner.

Reading everything, commit-safely. Global positions (`id`) are handed out at insert, not at
commit, so a transaction holding a lower position can commit after a higher one is already
visible: a reader tailing `read_all(from_position=last seen)` can skip it for good. Every row
therefore records its writing transaction (`tx_id`), and `read_committed` delivers rows in
`(tx_id, id)` order, and only rows whose transaction is older than every transaction still
running (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`). No transaction can still add rows
below that horizon, so a reader that keeps passing back the last cursor receives every committed
event exactly once, without serialising writers. The cost: a tailing reader lags the oldest
open transaction of the whole PostgreSQL cluster (any database), so a session left idle in a
transaction stalls tailing until it ends; `committed_lag` shows how many events are held back.

Following live. Appends wake readers of this store object at once, and other processes through
LISTEN/NOTIFY (`eventsource._sql.postgresql_signals`): `wait_for_new_events` returns within
milliseconds of any process's commit, falling back to its timeout when LISTEN is unavailable.
When a reader catches up but committed events wait behind the horizon (an older transaction is
still open), waiters are woken again after a short, growing delay (5 ms doubling to 1 s), as the
transaction holding the horizon need not be an append that notifies when it ends.

Connections. Appends and reads use a few asyncpg connections of the store's own
(`DriverPool`, as many as the engine's `pool_size`), made by the engine and then kept out of its
pool: lending them costs a list pop, where an SQLAlchemy checkout costs ~60 µs of CPU. They and
the LISTEN connection close with `close()` or when the engine is disposed. When the server or
the network ends a session under an operation, the store closes its idle connections too and
runs the operation once more on a new one; an append run again that way reports its own
events as appended (the stored event ids keep it from writing twice). `timeout` (10 s by
default) bounds each operation: PostgreSQL cancels a statement running longer, and the store
stops waiting for an answer a second later; both raise `EventStoreTimeoutError`.

Requires PostgreSQL 13+ (`xid8`). Table names are unqualified: the connection's `search_path`
chooses the schema. The tables are created, or upgraded in place, on first use.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar
from uuid import UUID

from eventsource._sql.postgresql import (
    DriverConnection,
    DriverPool,
    Operation,
    Row,
    apply_schema,
    engine_of,
    is_unique_violation,
    schema_is_current,
)
from eventsource._sql.postgresql_signals import CommitChannel, channel_name
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, default_registry
from eventsource.exceptions import OptimisticLockError, StoreNotConnectedError
from eventsource.observability.tracing import TracingMixin
from eventsource.stores._codec import DefaultTypeConverter, TypeConverter
from eventsource.stores._rules import (
    RowLayout,
    bound_tenant,
    check_append_args,
    check_stream_owner,
    decode_rows,
    encode_payloads,
    stamp_events,
    stored_prefix,
    tenant_variants,
)
from eventsource.stores.interface import (
    AppendResult,
    CommittedPage,
    EventStore,
    EventStream,
    ReadDirection,
    ReadOptions,
    ReadResult,
    StoredEvent,
    coerce_timestamp,
    parse_stream_id,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from sqlalchemy.ext.asyncio import async_sessionmaker

__all__ = ["PostgreSQLEventStore"]

T = TypeVar("T")

_FRESH = """
fresh AS (
    SELECT t.*, t.payload::jsonb AS doc, ok.v + row_number() OVER (ORDER BY t.ord) AS version
    FROM ok, unnest($4::uuid[], $5::text[], $6::uuid[], $7::text[], $8::timestamptz[], $9::text[])
        WITH ORDINALITY AS t(event_id, event_type, tenant_id, actor_id, occurred_at, payload, ord)
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.event_id)
), ins AS (
    INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, tenant_id, actor_id,
                        version, "timestamp", payload)
    SELECT event_id, $1, $2, event_type, tenant_id, actor_id, version, occurred_at, doc
    FROM fresh ORDER BY ord
    RETURNING id, version
)"""
_OUTBOX = """, box AS (
    INSERT INTO event_outbox (id, event_id, event_type, aggregate_id, aggregate_type, tenant_id,
                              event_data, created_at, status, retry_count)
    SELECT gen_random_uuid(), event_id, event_type, $1, $2, tenant_id,
           jsonb_build_object('event_id', event_id, 'aggregate_id', $1::uuid,
                              'aggregate_type', $2::text, 'tenant_id', tenant_id,
                              'occurred_at', occurred_at, 'payload', doc),
           now(), 'pending', 0
    FROM fresh ORDER BY ord
)"""
# A stream's version is its newest row, read as `ORDER BY version DESC LIMIT 1`: the same
# question as MAX(version), but PostgreSQL answers MAX by reading every index entry of the
# stream whenever it estimates the stream to be one row (a generic plan, a table not yet
# analyzed): 3.2 ms instead of 0.03 ms for a stream of 10,000.
_APPEND = """WITH cur AS (
    SELECT COALESCE((SELECT version FROM events
                     WHERE aggregate_id = $1::uuid AND aggregate_type = $2::text
                     ORDER BY version DESC LIMIT 1), 0) AS v
), ok AS (
    SELECT v FROM cur WHERE $3::int = -1 OR ($3::int = -2 AND v > 0) OR v = $3::int
), {body}
SELECT (SELECT v FROM cur), EXISTS (SELECT 1 FROM ok), (SELECT max(version) FROM ins),
       COALESCE((SELECT max(id) FROM ins), (SELECT max(id) FROM events))"""
_APPEND_SQL = _APPEND.format(body=_FRESH.lstrip())
_APPEND_OUTBOX_SQL = _APPEND.format(body=_FRESH.lstrip() + _OUTBOX)
# Inside a tenant scope the same statement also checks that the stream is the tenant's ($10):
# its latest event (one probe of the stream's unique index, as MAX(version) is) must carry
# $10, or nothing is inserted and the owner comes back in the fifth column.
_APPEND_SCOPED = """WITH head AS (
    SELECT version, tenant_id FROM events
    WHERE aggregate_id = $1::uuid AND aggregate_type = $2::text
    ORDER BY version DESC LIMIT 1
), cur AS (
    SELECT COALESCE((SELECT version FROM head), 0) AS v
), ok AS (
    SELECT v FROM cur WHERE ($3::int = -1 OR ($3::int = -2 AND v > 0) OR v = $3::int)
        AND NOT EXISTS (SELECT 1 FROM head WHERE tenant_id IS DISTINCT FROM $10::uuid)
), {body}
SELECT (SELECT v FROM cur), EXISTS (SELECT 1 FROM ok), (SELECT max(version) FROM ins),
       COALESCE((SELECT max(id) FROM ins), (SELECT max(id) FROM events)),
       (SELECT tenant_id FROM head)"""
_APPEND_SCOPED_SQL = _APPEND_SCOPED.format(body=_FRESH.lstrip())
_APPEND_SCOPED_OUTBOX_SQL = _APPEND_SCOPED.format(body=_FRESH.lstrip() + _OUTBOX)
# After an append was run again on a new connection (its first connection died before the
# answer came): its own events, if the first run stored them ($3 their ids, $4 the expected
# version). Only ever run then.
_LANDED = """SELECT max(version), max(id) FROM events
    WHERE event_id = ANY($3::uuid[]) AND aggregate_id = $1 AND aggregate_type = $2
      AND version > $4"""

# The columns `_stored` turns into StoredEvents.
_COLUMNS = (
    "id, event_id, event_type, aggregate_id, aggregate_type, version, created_at, payload::text"
)
_LAYOUT = RowLayout(
    position=0, event_id=1, event_type=2, payload=7, version=5, aggregate_id=3,
    aggregate_type=4, stored_at=6,
)
_TIME_BOUNDS = (
    '($2::timestamptz IS NULL OR "timestamp" >= $2) '
    'AND ($3::timestamptz IS NULL OR "timestamp" <= $3)'
)
# Reads come in pairs (unscoped, scoped): the scoped one adds `AND tenant_id = $n` for the
# tenant bound by `tenant_scope` (index a pair with `tenant is not None`).
_STREAM = tenant_variants(
    f"""SELECT {_COLUMNS} FROM events
    WHERE aggregate_id = $1 AND aggregate_type = $4 AND version > $5 AND {_TIME_BOUNDS}{{tenant}}
    ORDER BY version""",
    "$6",
)
_STREAM_ANY_TYPE = tenant_variants(
    f"""SELECT {_COLUMNS} FROM events
    WHERE aggregate_id = $1 AND version > $5 AND {_TIME_BOUNDS} AND $4::text IS NULL{{tenant}}
    ORDER BY id""",
    "$6",
)
_ALL_FORWARD = tenant_variants(
    f"""SELECT {_COLUMNS} FROM events
    WHERE id > $1 AND {_TIME_BOUNDS}{{tenant}} ORDER BY id LIMIT $4""",
    "$5",
)
_ALL_BACKWARD = tenant_variants(
    f"""SELECT {_COLUMNS} FROM events
    WHERE id < $1 AND id > $5 AND {_TIME_BOUNDS}{{tenant}} ORDER BY id DESC LIMIT $4""",
    "$6",
)
_FIRST_TYPE = tenant_variants(
    "SELECT aggregate_type FROM events WHERE aggregate_id = $1{tenant} ORDER BY id LIMIT 1", "$2"
)
_STREAM_VERSION = tenant_variants(  # not MAX(version): see `_APPEND`
    "SELECT COALESCE((SELECT version FROM events "
    "WHERE aggregate_id = $1 AND aggregate_type = $2{tenant} ORDER BY version DESC LIMIT 1), 0)",
    "$3",
)
_EXISTS = tenant_variants(
    "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1{tenant})", "$2"
)
_GLOBAL_POSITION = (
    "SELECT COALESCE(MAX(id), 0) FROM events",
    "SELECT COALESCE(MAX(id), 0) FROM events WHERE tenant_id = $1",
)
_LAG = tenant_variants(
    "SELECT count(*) FROM events WHERE (tx_id, id) > ($1::text::xid8, $2::bigint){tenant}", "$3"
)
# The page, plus one all-NULL row when committed events wait behind the horizon; both parts
# share the statement's snapshot, so the flag describes exactly the horizon the page used.
# Ordered by the xid8 column itself: a bare `ORDER BY tx_id` would sort by the text output
# column of that name, and text order breaks where transaction ids gain a digit.
_COMMITTED_TEMPLATE = f"""(SELECT {_COLUMNS}, e.tx_id::text AS tx FROM events e
    WHERE (e.tx_id, e.id) > ($1::text::xid8, $2::bigint)
      AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot()){{tenant_e}}
    ORDER BY e.tx_id, e.id LIMIT $3)
UNION ALL
(SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM events h
    WHERE h.tx_id >= pg_snapshot_xmin(pg_current_snapshot()){{tenant_h}}
    ORDER BY h.tx_id LIMIT 1)"""
_COMMITTED = (
    _COMMITTED_TEMPLATE.format(tenant_e="", tenant_h=""),
    _COMMITTED_TEMPLATE.format(tenant_e=" AND e.tenant_id = $4", tenant_h=" AND h.tenant_id = $4"),
)
_HEAD = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
_AT_POSITION = "SELECT tx_id::text, id FROM events WHERE id <= $1 ORDER BY id DESC LIMIT 1"
_HOME = "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass('events')"
_BY_TYPE = """SELECT event_id, event_type, payload::text FROM events
    WHERE aggregate_type = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
      AND ($3::timestamptz IS NULL OR "timestamp" > $3)
    ORDER BY "timestamp", id"""
_BY_TYPE_LAYOUT = RowLayout(
    position=-1, event_id=0, event_type=1, payload=2, version=-1, aggregate_id=-1,
    aggregate_type=-1, stored_at=-1,
)

_PAGE = 5000
_MAX_ATTEMPTS = 50
_NOT_MAX_ID = 2**63 - 1
_MAX_PREFETCHES = 8
_FIRST_RECHECK = 0.005
_MAX_RECHECK = 1.0


class PostgreSQLEventStore(TracingMixin, EventStore):
    """Events in a PostgreSQL `events` table, reached through an SQLAlchemy `async_sessionmaker`.

    See the module documentation for how appends stay atomic and how `read_committed` follows
    the whole store without skipping late commits.
    """

    span_prefix = "postgresql_event_store"

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
        _check_timeout(timeout)
        self._init_tracing(__name__, enable_tracing)
        self._session_factory = session_factory
        self._engine = engine_of(session_factory)
        self._registry = event_registry
        self._outbox_enabled = outbox_enabled
        self._converter: TypeConverter = type_converter or DefaultTypeConverter(
            uuid_fields, string_id_fields, auto_detect_uuid
        )
        self._append_sql = _APPEND_OUTBOX_SQL if outbox_enabled else _APPEND_SQL
        self._append_scoped_sql = (
            _APPEND_SCOPED_OUTBOX_SQL if outbox_enabled else _APPEND_SCOPED_SQL
        )
        self._tables = ("events", "outbox") if outbox_enabled else ("events",)
        self._timeout = timeout
        self._ready = False
        self._closed = False
        self._ready_lock: asyncio.Lock | None = None
        self._pool: DriverPool | None = None
        self._signals: CommitChannel | None = None
        self._recheck = 0.0
        self._recheck_timer: asyncio.TimerHandle | None = None
        self._prefetches: dict[
            tuple[int, int, int, UUID | None], asyncio.Task[list[Row]]
        ] = {}

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
    def event_registry(self) -> EventRegistry:
        return self._registry if self._registry is not None else default_registry

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
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()
            self._recheck_timer = None
        prefetches = list(self._prefetches.values())
        self._prefetches.clear()
        for task in prefetches:
            task.cancel()
        await asyncio.gather(*prefetches, return_exceptions=True)
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
                async with self._connection(what, timed=False) as conn:  # may rewrite a table
                    await apply_schema(conn, self._tables)
            home = await self._run(what, lambda conn: conn.fetchval(_HOME))
            assert self._pool is not None  # made by _run
            self._signals = CommitChannel(self._pool, channel_name(str(home)), self._signal_commit)
            self._ready = True

    def _connection(
        self, what: str, *, timed: bool = True
    ) -> AbstractAsyncContextManager[DriverConnection]:
        return self._driver_pool().connection(what, timed=timed)

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

    async def append_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        expected_version: int,
    ) -> AppendResult:
        check_append_args(aggregate_id, aggregate_type, events, expected_version)
        if not events:
            return AppendResult(True, expected_version)
        tenant = bound_tenant()
        if tenant is not None:  # stamp or refuse; the stream owner is checked in the statement
            events = stamp_events(events, tenant)
        payloads = encode_payloads(events, self._registry)  # errors before any write
        await self._ensure_ready()
        with self._append_span(aggregate_id, aggregate_type, len(events), expected_version):
            return await self._append(
                aggregate_id, aggregate_type, events, payloads, expected_version, tenant
            )

    async def _append(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        events: Sequence[DomainEvent],
        payloads: list[str],
        expected_version: int,
        tenant: UUID | None,
    ) -> AppendResult:
        args: tuple[object, ...] = (
            aggregate_id, aggregate_type, expected_version, *_columns(events, payloads)
        )
        sql = self._append_sql
        if tenant is not None:
            args, sql = (*args, tenant), self._append_scoped_sql
        runs = 0

        async def append(conn: DriverConnection) -> Row | tuple[Any, ...]:
            nonlocal runs
            runs += 1
            row = await _append_row(conn, sql, args, expected_version)
            if runs > 1 and not row[1] and expected_version >= 0:
                # Run again after the first connection died: a mismatch may be this very
                # append, stored by the first run before the answer was lost.
                landed = await conn.fetchrow(_LANDED, *args[:2], args[3], expected_version)
                if landed is not None and landed[0] is not None:
                    return (landed[0], True, landed[0], landed[1], tenant)
            return row

        # On a connection whose cached generic plan is index lookups whatever the table's size
        # when it was planned (see `DriverPool.connection`).
        row = await self._run("append_events", append, stable_plans=True)
        current, matched, new_version, position = row[0], row[1], row[2], row[3]
        if not matched:
            if tenant is not None and current > 0 and row[4] != tenant:
                check_stream_owner(aggregate_id, aggregate_type, tenant, row[4])
            raise OptimisticLockError(aggregate_id, expected_version, current)
        if new_version is not None:
            self._signal_commit()
            if self._signals is not None:
                await asyncio.shield(self._signals.notify())
        return AppendResult(True, current if new_version is None else new_version, position or 0)

    # -- one stream ---------------------------------------------------------------------------

    async def get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None = None,
        from_version: int = 0,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
    ) -> EventStream:
        with self._read_span(aggregate_id, aggregate_type, from_version):
            return await self._get_events(
                aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp
            )

    async def _get_events(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None,
        from_version: int,
        from_timestamp: datetime | None,
        to_timestamp: datetime | None,
    ) -> EventStream:
        tenant = bound_tenant()
        rows = await self._stream_rows(
            aggregate_id, aggregate_type, from_version, from_timestamp, to_timestamp, tenant
        )
        registry, converter = self._registry, self._converter
        events = decode_rows(rows, _LAYOUT, registry, converter)
        if aggregate_type is None:
            aggregate_type = rows[0][4] if rows else await self._first_type(aggregate_id, tenant)
        version = rows[-1][5] if rows else max(from_version, 0)
        return EventStream(aggregate_id, aggregate_type, events, version)

    async def _stream_rows(
        self,
        aggregate_id: UUID,
        aggregate_type: str | None,
        after_version: int,
        from_timestamp: datetime | None,
        to_timestamp: datetime | None,
        tenant: UUID | None,
    ) -> list[Row]:
        await self._ensure_ready()
        statements = _STREAM if aggregate_type is not None else _STREAM_ANY_TYPE
        args: tuple[object, ...] = (
            aggregate_id, from_timestamp, to_timestamp, aggregate_type, after_version
        )
        if tenant is not None:
            args += (tenant,)
        return await self._run(
            "get_events", lambda conn: conn.fetch(statements[tenant is not None], *args)
        )

    async def _first_type(self, aggregate_id: UUID, tenant: UUID | None) -> str:
        args = (aggregate_id,) if tenant is None else (aggregate_id, tenant)
        found = await self._run(
            "get_events", lambda conn: conn.fetchval(_FIRST_TYPE[tenant is not None], *args)
        )
        return str(found) if found is not None else "Unknown"

    async def get_stream_version(self, aggregate_id: UUID, aggregate_type: str) -> int:
        tenant = bound_tenant()
        args: tuple[object, ...] = (aggregate_id, aggregate_type)
        if tenant is not None:
            args += (tenant,)
        await self._ensure_ready()
        sql = _STREAM_VERSION[tenant is not None]
        version = await self._run("get_stream_version", lambda conn: conn.fetchval(sql, *args))
        return int(version)

    def read_stream(self, stream_id: str, options: ReadOptions | None = None) -> ReadResult:
        uid, aggregate_type = parse_stream_id(stream_id)
        opts = options or ReadOptions()
        tenant = bound_tenant()  # bound when called, not when iterated

        async def source() -> AsyncIterator[StoredEvent]:
            if opts.from_position == -1 and opts.direction is ReadDirection.FORWARD:
                return
            rows = await self._stream_rows(
                uid, aggregate_type, max(opts.from_position, 0),
                opts.from_timestamp, opts.to_timestamp, tenant,
            )
            if opts.direction is ReadDirection.BACKWARD:
                rows.reverse()
            if opts.limit is not None:
                rows = rows[: opts.limit]
            page, corrupt = stored_prefix(rows, _LAYOUT, self._registry, self._converter)
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
        opts = options or ReadOptions()
        tenant = bound_tenant()  # bound when called, not when iterated

        async def source() -> AsyncIterator[StoredEvent]:
            backward = opts.direction is ReadDirection.BACKWARD
            if opts.from_position == -1 and not backward:
                return
            floor = max(opts.from_position, 0)
            mark = _NOT_MAX_ID if backward else floor
            left = opts.limit
            while left is None or left > 0:
                size = _PAGE if left is None else min(_PAGE, left)
                rows = await self._page(backward, mark, floor, size, opts, tenant)
                if not rows:
                    return
                mark = rows[-1][0]
                if left is not None:
                    left -= len(rows)
                page, corrupt = stored_prefix(rows, _LAYOUT, self._registry, self._converter)
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
        statements = _ALL_BACKWARD if backward else _ALL_FORWARD
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
        tx_id, position = _parse_cursor(after)
        tenant = bound_tenant()
        await self._ensure_ready()
        rows = await self._prefetched(tx_id, position, limit, tenant)
        if rows is None:
            rows = await self._committed_rows(tx_id, position, limit, tenant)
        held_back = False
        if rows and (rows[-1][0] is None or any(row[0] is None for row in rows)):
            rows = [row for row in rows if row[0] is not None]
            held_back = True
        if len(rows) < limit:  # caught up: the reader is about to wait
            self._schedule_recheck(held_back)
        if not rows:
            return CommittedPage([], f"{tx_id}:{position}")
        last_tx, last_position = int(rows[-1][8]), rows[-1][0]
        if len(rows) == limit:  # catching up: fetch the next page while this one is decoded
            self._prefetch(last_tx, last_position, limit, tenant)
        stored, corrupt = stored_prefix(rows, _LAYOUT, self._registry, self._converter)
        if corrupt is not None:  # the readable events before the row, and a cursor past it
            before = _cursor_of(rows[len(stored) - 1]) if stored else f"{tx_id}:{position}"
            raise corrupt.resumable(CommittedPage(stored, before), _cursor_of(rows[len(stored)]))
        return CommittedPage(stored, f"{last_tx}:{last_position}")

    async def _committed_rows(
        self, tx_id: int, position: int, limit: int, tenant: UUID | None
    ) -> list[Row]:
        args: tuple[object, ...] = (str(tx_id), position, limit)
        if tenant is not None:
            args += (tenant,)
        return await self._run(
            "read_committed", lambda conn: conn.fetch(_COMMITTED[tenant is not None], *args)
        )

    def _prefetch(self, tx_id: int, position: int, limit: int, tenant: UUID | None) -> None:
        """Start reading the page after a full one, so its round trip overlaps decoding.

        A page read earlier is still right: rows below an older horizon are exactly the first
        rows below a newer one (the order is by transaction first), and nothing can join them.
        """
        key = (tx_id, position, limit, tenant)  # a page is one tenant's (or everyone's)
        pending = self._prefetches
        if key in pending:
            return
        while len(pending) >= _MAX_PREFETCHES:  # readers that moved on: drop the oldest
            pending.pop(next(iter(pending))).cancel()
        pending[key] = asyncio.get_running_loop().create_task(self._committed_rows(*key))

    async def _prefetched(
        self, tx_id: int, position: int, limit: int, tenant: UUID | None
    ) -> list[Row] | None:
        """The prefetched page for this cursor if it is a full one (else read afresh: whether
        the reader has caught up is decided on a new snapshot)."""
        task = self._prefetches.pop((tx_id, position, limit, tenant), None)
        if task is None:
            return None
        try:
            rows = await task
        except Exception:
            return None
        return rows if len(rows) == limit and rows[-1][0] is not None else None

    async def committed_lag(self, after: str | None = None) -> int:
        """How many stored events come after cursor `after`, including any held back by an
        open transaction."""
        tx_id, position = _parse_cursor(after)
        tenant = bound_tenant()
        args: tuple[object, ...] = (str(tx_id), position)
        if tenant is not None:
            args += (tenant,)
        await self._ensure_ready()
        count = await self._run(
            "committed_lag", lambda conn: conn.fetchval(_LAG[tenant is not None], *args)
        )
        return int(count)

    async def head_cursor(self) -> str:
        """A cursor after every event committed so far, and before any committed later.

        Events already committed behind an older open transaction are still delivered.
        """
        await self._ensure_ready()
        horizon = int(await self._run("head_cursor", lambda conn: conn.fetchval(_HEAD)))
        return f"{max(horizon - 1, 0)}:{_NOT_MAX_ID}"

    async def cursor_for_position(self, position: int) -> str:
        """A cursor just after the event at global `position` in commit-safe order (or after
        the last event below it)."""
        if position < 0:
            raise ValueError(f"position must be >= 0, got {position}")
        if position == 0:
            return "0:0"
        await self._ensure_ready()
        row = await self._run(
            "cursor_for_position", lambda conn: conn.fetchrow(_AT_POSITION, position)
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

    def _schedule_recheck(self, held_back: bool) -> None:
        """After a reader caught up: if committed events wait behind the horizon, wake readers
        again soon (backing off while it stays put), as whatever holds the horizon back need
        not be an append that notifies when it ends."""
        if not held_back:
            self._recheck = 0.0
            return
        if self._recheck_timer is not None:
            return
        self._recheck = min(self._recheck * 2 or _FIRST_RECHECK, _MAX_RECHECK)
        self._recheck_timer = asyncio.get_running_loop().call_later(
            self._recheck, self._recheck_due
        )

    def _recheck_due(self) -> None:
        self._recheck_timer = None
        self._signal_commit()

    async def get_events_by_type(
        self,
        aggregate_type: str,
        tenant_id: UUID | None = None,
        from_timestamp: datetime | float | None = None,
    ) -> list[DomainEvent]:
        start = coerce_timestamp(from_timestamp)
        bound = bound_tenant()
        if bound is not None:
            if tenant_id is not None and tenant_id != bound:
                return []  # another tenant's events do not exist inside this scope
            tenant_id = bound
        await self._ensure_ready()
        args = (aggregate_type, tenant_id, start)
        rows = await self._run("get_events_by_type", lambda conn: conn.fetch(_BY_TYPE, *args))
        registry, converter = self._registry, self._converter
        return decode_rows(rows, _BY_TYPE_LAYOUT, registry, converter)

    async def event_exists(self, event_id: UUID) -> bool:
        tenant = bound_tenant()
        args = (event_id,) if tenant is None else (event_id, tenant)
        await self._ensure_ready()
        found = await self._run(
            "event_exists", lambda conn: conn.fetchval(_EXISTS[tenant is not None], *args)
        )
        return bool(found)

    async def get_global_position(self) -> int:
        tenant = bound_tenant()
        args = () if tenant is None else (tenant,)
        await self._ensure_ready()
        sql = _GLOBAL_POSITION[tenant is not None]
        position = await self._run("get_global_position", lambda conn: conn.fetchval(sql, *args))
        return int(position)



async def _append_row(
    conn: DriverConnection, sql: str, args: tuple[object, ...], expected_version: int
) -> Row:
    """The append statement's one row, run again after a lost race (see below)."""
    for attempt in range(_MAX_ATTEMPTS):
        try:
            if attempt == 0 or expected_version >= 0:
                row = await conn.fetchrow(sql, *args)
            else:
                row = await _append_locked(conn, sql, args)
            break
        except Exception as exc:
            # A concurrent append won a version or an event id. Run again: the statement then
            # sees the winner (it has committed: PostgreSQL reports the violation only then)
            # and reports the true version, at once. ANY and STREAM_EXISTS append after the
            # winner instead, so their retries back off and take a per-stream lock to stop
            # losing the same race again and again.
            if not is_unique_violation(exc) or attempt == _MAX_ATTEMPTS - 1:
                raise
            if expected_version < 0:
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
    assert row is not None  # the statement always returns one row
    return row


async def _append_locked(conn: DriverConnection, sql: str, args: tuple[object, ...]) -> Row | None:
    """The append statement after taking the stream's advisory lock (the contended path)."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || ':' || $2::text, 0))",
            args[0], args[1],
        )
        return await conn.fetchrow(sql, *args)


def _columns(events: Sequence[DomainEvent], payloads: list[str]) -> tuple[list[Any], ...]:
    """The append's column arrays; an event id repeated within the batch is kept once."""
    ids: list[UUID] = []
    types: list[str] = []
    tenants: list[UUID | None] = []
    actors: list[str | None] = []
    times: list[datetime] = []
    kept: list[str] = []
    seen: set[UUID] = set()
    for event, payload in zip(events, payloads, strict=True):
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        ids.append(event.event_id)
        types.append(event.event_type)
        tenants.append(event.tenant_id)
        actors.append(event.actor_id)
        times.append(event.occurred_at)
        kept.append(payload)
    return ids, types, tenants, actors, times, kept


def _cursor_of(row: Row) -> str:
    """The commit-safe cursor just after a row of `read_committed`."""
    return f"{int(row[8])}:{row[0]}"


def _check_timeout(timeout: object) -> None:
    """`timeout` must be None or a finite number of seconds > 0."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be finite and > 0 seconds, or None, got {timeout!r}")


def _parse_cursor(cursor: str | None) -> tuple[int, int]:
    """`"<xid>:<position>"` as two ints; `None` or `""` is the start of the store."""
    if not cursor:
        return 0, 0
    tx_text, sep, position_text = cursor.partition(":")
    try:
        tx_id, position = int(tx_text), int(position_text)
    except ValueError:
        tx_id = position = -1
    if not sep or tx_id < 0 or position < 0:
        raise ValueError(f"Not a cursor of PostgreSQLEventStore: {cursor!r}")
    return tx_id, position

