"""The PostgreSQL store under hostile conditions: JIT-prone plans, killed and silent
connections, statements blocked by another session's lock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import pytest
from _pg_support import added, raw_connection, register
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from eventsource.exceptions import EventStoreError, EventStoreTimeoutError
from eventsource.stores.postgresql import PostgreSQLEventStore

pytestmark = pytest.mark.postgresql


@asynccontextmanager
async def opened_store(
    url: str, schema: str, *, application_name: str = "eventsource-test", port: int | None = None,
    **options: Any,
) -> AsyncIterator[tuple[PostgreSQLEventStore, AsyncEngine]]:
    """A store on its own engine, whose connections carry `application_name` (so a test can
    find their backends) and go to `port` if given (a proxy)."""
    target = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    if port is not None:
        target = target.replace(":5432/", f":{port}/", 1)
        assert f":{port}/" in target, "the test URL must name port 5432"
    engine = create_async_engine(
        target,
        pool_size=5,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name}
        },
    )
    register()
    store = PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False, **options)
    try:
        await store.initialize()
        yield store, engine
    finally:
        await store.close()
        await engine.dispose()


# -- plans: no JIT ------------------------------------------------------------------------------


async def test_no_statement_of_the_store_is_jit_compiled(pg_url: str, pg_schema: str) -> None:
    """The store's connections plan with sorts and scans disabled, which adds 10^10 to a plan's
    cost wherever one remains (the outbox append sorts the rows of a CTE): far above
    `jit_above_cost`, so PostgreSQL JIT-compiled the outbox append at every execution, 400 ms
    each. The control shows the server does exactly that with the planner settings alone."""
    from eventsource._sql.postgresql_pool import _INDEX_PATHS_ONLY, _ONE_PLAN
    from eventsource.stores._postgresql_append import _APPEND_OUTBOX_SQL, _APPEND_SCOPED_OUTBOX_SQL

    types = "uuid, text, int, uuid[], text[], uuid[], text[], timestamptz[], text[]"
    values = (
        "gen_random_uuid(), 'PgCart', 0, ARRAY[gen_random_uuid()], ARRAY['PgItemAdded'],"
        " ARRAY[NULL::uuid], ARRAY[NULL::text], ARRAY[now()], ARRAY['{}']"
    )
    statements = [
        (f"PREPARE unscoped({types}) AS {_APPEND_OUTBOX_SQL}", f"EXECUTE unscoped({values})"),
        (
            f"PREPARE scoped({types}, uuid) AS {_APPEND_SCOPED_OUTBOX_SQL}",
            f"EXECUTE scoped({values}, gen_random_uuid())",
        ),
    ]
    async with opened_store(pg_url, pg_schema, outbox_enabled=True) as (store, _engine):
        control = await raw_connection(pg_url, pg_schema)
        try:
            await control.execute(f"{_INDEX_PATHS_ONLY}; {_ONE_PLAN}")
            assert store._pool is not None
            async with store._pool.connection("test", stable_plans=True) as conn:
                for prepare, execute in statements:
                    plans = []
                    for planner in (conn, control):
                        await planner.execute(prepare)
                        rows = await planner.fetch(f"EXPLAIN {execute}")
                        plans.append("\n".join(row[0] for row in rows))
                        await planner.execute(f"DEALLOCATE {prepare.split()[1].split('(')[0]}")
                    assert "JIT" not in plans[0], plans[0]
                    assert "JIT" in plans[1], plans[1]  # what the store's setting prevents
            for stable in (False, True):  # and every other statement: the same connections
                async with store._pool.connection("test", stable_plans=stable) as conn:
                    assert await conn.fetchval("SHOW jit") == "off"
        finally:
            await control.close()


# -- dead connections ---------------------------------------------------------------------------


async def _terminate(pg_url: str, application_name: str) -> int:
    """End every backend of `application_name` from another session; how many there were."""
    import asyncpg

    admin = await asyncpg.connect(pg_url)
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            application_name,
        ))
    finally:
        await admin.close()


@pytest.mark.parametrize("pause", [0.0, 0.3], ids=["at-once", "after-the-close-was-seen"])
async def test_appends_and_reads_after_the_pool_connections_were_killed(
    pg_url: str, pg_schema: str, pause: float
) -> None:
    """The server ends every idle connection of the store (a restart, a failover, an admin):
    the next appends and reads must all succeed, each once, on new connections, whether the
    client has already seen the connections close or not."""
    name = f"es-{uuid4().hex[:12]}"
    async with opened_store(pg_url, pg_schema, application_name=name) as (store, _engine):
        carts = [uuid4() for _ in range(5)]
        await asyncio.gather(*(store.append_events(c, "PgCart", [added(c, 1)], 0) for c in carts))
        await asyncio.gather(*(store.get_stream_version(c, "PgCart") for c in carts))
        assert await _terminate(pg_url, name) >= 5
        await asyncio.sleep(pause)
        for round_ in range(2):
            for cart in carts:
                await store.append_events(cart, "PgCart", [added(cart, 2 + round_)], 1 + round_)
        for cart in carts:
            assert await store.get_stream_version(cart, "PgCart") == 3
            stream = await store.get_events(cart, "PgCart")
            assert [event.n for event in stream.events] == [1, 2, 3]
        assert await _terminate(pg_url, name) >= 1
        await asyncio.sleep(pause)
        assert len((await store.read_all()).events) == 15


async def test_an_append_whose_answer_was_lost_reports_its_own_success(
    pg_url: str, pg_schema: str
) -> None:
    """The connection breaks after the server received an append and before its answer came
    back: the store runs the append again on a new connection. The stored event ids make the
    rerun write nothing, and it must report the append's success, not an
    `OptimisticLockError` against the append's own events."""
    async with _Relay() as link, opened_store(pg_url, pg_schema, port=link.port) as (store, _e):
        cart = uuid4()
        await store.append_events(cart, "PgCart", [added(cart, 1)], 0)
        event = added(cart, 2)
        link.cut_after_next_request = True
        result = await store.append_events(cart, "PgCart", [event], 1)
        assert link.cuts == 1
        assert result.new_version == 2
        stream = await store.get_events(cart, "PgCart")
        assert [stored.event_id for stored in stream.events][-1] == event.event_id
        assert stream.version == 2


# -- timeouts -----------------------------------------------------------------------------------


async def test_an_append_blocked_by_a_lock_times_out_naming_what(
    pg_url: str, pg_schema: str
) -> None:
    """Another session holds a lock the append needs: the server cancels the append at the
    store's timeout, the error says so, and the store keeps working once the lock is gone."""
    async with opened_store(pg_url, pg_schema, timeout=1.0) as (store, _engine):
        cart = uuid4()
        await store.append_events(cart, "PgCart", [added(cart, 1)], 0)
        holder = await raw_connection(pg_url, pg_schema)
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("LOCK TABLE events IN SHARE MODE")  # no inserts meanwhile
            started = time.monotonic()
            with pytest.raises(EventStoreTimeoutError) as caught:
                await store.append_events(cart, "PgCart", [added(cart, 2)], 1)
            elapsed = time.monotonic() - started
            await transaction.rollback()
        finally:
            await holder.close()
        assert 0.9 <= elapsed <= 1.0 + 2.0, elapsed
        message = str(caught.value)
        for part in ("append_events", "timeout of 1 s", "cancelled"):
            assert part in message, message
        assert isinstance(caught.value, EventStoreError)
        assert isinstance(caught.value, TimeoutError)
        assert (await store.append_events(cart, "PgCart", [added(cart, 2)], 1)).new_version == 2


async def test_the_timeout_defaults_to_ten_seconds_on_every_store_connection(
    pg_url: str, pg_schema: str
) -> None:
    async with opened_store(pg_url, pg_schema) as (store, _engine):
        assert store._pool is not None
        for stable in (False, True):
            async with store._pool.connection("test", stable_plans=stable) as conn:
                assert await conn.fetchval("SHOW statement_timeout") == "10s"


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(0, ValueError), (-1.5, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
     ("10", TypeError), (True, TypeError)],
)
def test_a_bad_timeout_is_refused_naming_it(
    pg_session_factory: Any, timeout: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        PostgreSQLEventStore(pg_session_factory, timeout=timeout)  # type: ignore[arg-type]


async def test_an_append_over_a_silent_link_times_out_naming_what(
    pg_url: str, pg_schema: str
) -> None:
    """The network stops carrying packets (no reset, no close): the store stops waiting at
    its timeout plus a second, says that the server did not answer, and works again on a new
    connection once the network does."""
    async with _Relay() as link, opened_store(
        pg_url, pg_schema, port=link.port, timeout=1.0
    ) as (store, _engine):
        cart = uuid4()
        await store.append_events(cart, "PgCart", [added(cart, 1)], 0)
        link.silent = True
        started = time.monotonic()
        with pytest.raises(EventStoreTimeoutError) as caught:
            await store.append_events(cart, "PgCart", [added(cart, 2)], 1)
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed <= 2.0 + 2.0, elapsed
        message = str(caught.value)
        for part in ("append_events", "no answer"):
            assert part in message, message
        link.silent = False
        assert await store.get_stream_version(cart, "PgCart") in (1, 2)


class _Relay:
    """A TCP relay to the PostgreSQL server that misbehaves on demand. While `silent`, bytes
    in either direction are swallowed and the connections stay open (a network that stopped
    carrying packets). With `cut_after_next_request`, the next bytes a client sends reach the
    server, and then that client's connection is closed before any answer (a network that
    broke in between)."""

    def __init__(self) -> None:
        self.silent = False
        self.cut_after_next_request = False
        self.cuts = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> _Relay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5432)
        for source, sink, upward in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.get_running_loop().create_task(
                self._pipe(source, sink, writer, upward)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
        upward: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                if self.silent or client.is_closing():
                    continue
                sink.write(data)
                await sink.drain()
                if upward and self.cut_after_next_request:
                    self.cut_after_next_request = False
                    self.cuts += 1
                    client.close()  # the server keeps the request, the client gets no answer
        finally:
            sink.close()
