"""`PostgreSQLDCBStore`: dynamic consistency boundaries over a `PostgreSQLEventStore`,
without a table lock and without SERIALIZABLE.

Storage. Appended events are rows of `events` (so every other reader sees them); their tags
are rows of `event_tags (tag, tx_id, position, event_type)`, whose primary key serves both
the read by tag and the check below. Type-only items use an `events (event_type, tx_id, id)`
index. Both are created on first use.

The token. A read is one statement: it selects the matching events and
`pg_current_snapshot()`, the very snapshot it read in (xmin, xmax and the transactions in
flight). That snapshot is the token, not a maximum position: positions are handed out at
insert, not at commit, so a transaction holding a LOWER position than one the reader saw may
commit later; the snapshot says it was in flight, hence unseen.

The append is one call of the PL/pgSQL function `eventsource_dcb_append` (one round trip):
1. It takes transaction-scoped advisory locks on semantic keys, in sorted key order (so no two
   appends wait for each other in a cycle: no deadlock): exclusive on the condition's keys
   (every tag of each tagged item; the event types of each type-only item), shared on the
   appended events' tags and types (see `eventsource.dcb._keys.lock_keys`).
2. It checks the condition: the matching rows whose transaction the token's snapshot did not
   see (`tx_id >= xmin AND NOT pg_visible_in_snapshot(tx_id, token)`). Any: it returns their
   positions and writes nothing (`DCBConflictError`).
3. It inserts the events and their tags; the call's transaction commits with the locks.

Why it is correct. Let C be a conditional append and E an event matching C's query, written
by an append W (a DCB append) that C's reader did not see. E's writer asks for a key C holds
exclusively (E carries every tag of the item it matches, or has one of a type-only item's
types), so W and C do not overlap: either W committed before C got its locks, and C's check,
a fresh snapshot taken after the locks (READ COMMITTED: each statement of a volatile function
sees what has committed so far), finds E and refuses (E's transaction is not visible in the
token, whatever E's position); or W waits for C's commit, and then E is stored after C, as if
C came first. Two conditional appends that could each invalidate the other are thus ordered,
and the later one sees the earlier. Writers without conflicting conditions share their locks
and run in parallel; appends on unrelated tags take unrelated locks.

Events appended with the plain `append_events` take no DCB locks: a conditional append sees
them if they committed before its check (type-only items), but they carry no tags.
"""

from __future__ import annotations

import asyncio
from typing import Any

from eventsource._sql import dcb_postgresql as sql
from eventsource._sql.postgresql import DDL_LOCK_KEY, DriverConnection, Row, is_unique_violation
from eventsource.dcb._keys import lock_keys, query_arrays
from eventsource.dcb.base import AppendJob, DCBReadResult, DCBStore, SequencedEvent, Written
from eventsource.dcb.exceptions import DCBConflictError
from eventsource.dcb.query import AppendCondition, Query, TaggedEvents
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import OptimisticLockError
from eventsource.stores.codec import RowLayout, encode_payloads
from eventsource.stores.postgresql import PostgreSQLEventStore

__all__ = ["PostgreSQLDCBStore", "append_args"]

_MAX_ATTEMPTS = 20
# The columns of `READ`: what decoding an event needs (a corrupt row's error names its
# position), nothing a read would decode only to drop.
_READ_LAYOUT = RowLayout(
    position=0, event_id=1, event_type=2, payload=3, version=-1, aggregate_id=-1,
    aggregate_type=-1, stored_at=-1,
)


class PostgreSQLDCBStore(DCBStore):
    """Tagged events in `store`'s database, through `store`'s connections (see the module
    documentation for the design and why it is correct)."""

    def __init__(self, store: PostgreSQLEventStore) -> None:
        self.refuse_outbox(store)
        self._store = store
        self.event_store = store
        self.store_id = ""
        self._ready = False
        self._lock = asyncio.Lock()

    async def _prepare(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            store = self._store
            await store._ensure_ready()
            if not await store._run("creating the DCB tables", _schema_ready):
                await self._create()
            home = await store._run("DCB store identity", _identity)
            self.store_id = f"postgresql:{home}"
            self._ready = True

    async def _create(self) -> None:
        """The tag table, the index and the append function, one process at a time."""
        pool = self._store._driver_pool()
        async with pool.connection("creating the DCB tables") as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK_KEY)
            await conn.execute(sql.DDL)
            await conn.execute(sql.APPEND)

    async def _read(self, query: Query) -> DCBReadResult:
        await self._prepare()
        args = query_arrays(query)
        # A generic plan, planned once per connection: index lookups whatever the arrays.
        rows = await self._store._run(
            "dcb read", lambda conn: conn.fetch(sql.READ, *args), stable_plans=True
        )
        token = self.token(rows[0][5])
        if rows[0][0] is None:  # nothing matched: the one row holds the snapshot alone
            return DCBReadResult([], token)
        events = self._store._decode(rows, _READ_LAYOUT)
        return DCBReadResult(
            [SequencedEvent(row[0], event, frozenset(row[4]))
             for row, event in zip(rows, events, strict=True)],
            token,
        )

    async def _append(self, job: AppendJob) -> Written:
        events, condition, mark, stream = job
        await self._prepare()
        args = append_args(events, condition, mark, self._store._registry)
        if stream is not None:
            args = (*args[:-1], stream.expected)
        rows = await self._store._run(
            "dcb append", lambda conn: _call(conn, args), stable_plans=True
        )
        if rows and rows[0][0]:
            raise DCBConflictError([row[1] for row in rows])
        if rows and rows[0][0] is None:
            assert stream is not None  # only `append_stream` checks a version
            raise OptimisticLockError(stream.aggregate_id, stream.expected, rows[0][2])
        self._store._signal_commit()
        return [(row[1], row[2]) for row in rows]


def append_args(
    events: TaggedEvents,
    condition: AppendCondition | None,
    mark: str | None,
    registry: EventRegistry | None,
) -> tuple[Any, ...]:
    """The arguments of `eventsource_dcb_append` for a checked batch (payloads encoded here,
    before any I/O)."""
    plain = [event for event, _ in events]
    payloads = encode_payloads(plain, registry)
    keys, exclusive = lock_keys(events, condition)
    arrays = query_arrays(condition.query) if condition is not None else ([],) * 5
    return (
        keys, exclusive, mark, condition is not None, *arrays,
        [e.event_id for e in plain], [e.aggregate_id for e in plain],
        [e.aggregate_type for e in plain], [e.event_type for e in plain],
        [e.tenant_id for e in plain], [e.actor_id for e in plain],
        [e.occurred_at for e in plain], payloads,
        [event.event_id for event, tags in events for _ in tags],
        [tag for _, tags in events for tag in sorted(tags)],
        None,  # no expected version (`append_stream` sets one)
    )


async def _call(conn: DriverConnection, args: tuple[Any, ...]) -> list[Row]:
    """The append function; run again when a concurrent append to one of the same streams
    took the version it chose (it then reads the new head)."""
    for attempt in range(_MAX_ATTEMPTS):
        try:
            return await conn.fetch(sql.CALL, *args)
        except Exception as exc:
            if not is_unique_violation(exc) or attempt == _MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _schema_ready(conn: DriverConnection) -> bool:
    return bool(await conn.fetchval(sql.SCHEMA_READY))


async def _identity(conn: DriverConnection) -> str:
    return str(await conn.fetchval("SELECT current_database() || ':' || "
                                   "(SELECT relnamespace::regnamespace::text FROM pg_class "
                                   "WHERE oid = to_regclass('events'))"))
