"""Stores with their outbox enabled: a row per stored event, written in the append's own
transaction, and none at all when the append fails (issue 5, acceptance 2)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from outbox_support import Deposited, Outboxed, backend_env, deposits, pg_url_for, register

from eventsource.exceptions import EventStoreError, OptimisticLockError
from eventsource.repositories.outbox import InMemoryOutboxRepository
from eventsource.repositories.sqlite import SQLiteOutboxRepository
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.sqlite import SQLiteEventStore

SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    return request.param, pg_url_for(request.param, request)


@pytest.fixture
async def env(sql_backend: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Outboxed]:
    async with backend_env(sql_backend[0], tmp_path, sql_backend[1]) as opened:
        yield opened


async def _count(env: Outboxed, table: str) -> int:
    return int(await _scalar(env, f"SELECT count(*) FROM {table}"))


async def _scalar(env: Outboxed, sql: str) -> Any:
    rows = await _query(env, sql)
    return rows[0][0]


async def _query(env: Outboxed, sql: str) -> list[Any]:
    if env.backend == "sqlite":
        with sqlite3.connect(env.location) as db:
            return db.execute(sql).fetchall()
    import asyncpg

    url, schema = env.location.split()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _execute(env: Outboxed, *statements: str) -> None:
    if env.backend == "sqlite":
        with sqlite3.connect(env.location) as db:
            for statement in statements:
                db.execute(statement)
        return
    import asyncpg

    url, schema = env.location.split()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_every_stored_event_gets_a_pending_row_in_version_order(env: Outboxed) -> None:
    account, tenant = uuid4(), uuid4()
    events = deposits(account, 1, 30)
    events[3] = Deposited(
        aggregate_id=account, aggregate_version=4, amount=4, n=4, tenant_id=tenant
    )
    await env.store.append_events(account, "OutboxAccount", events[:25], 0)
    await env.store.append_events(account, "OutboxAccount", events[25:], 25)
    rows = await env.outbox.get_pending_events(limit=100)
    assert [row.event_id for row in rows] == [e.event_id for e in events]
    assert [row.event_data["payload"]["n"] for row in rows] == list(range(1, 31))
    fourth = rows[3]
    assert (fourth.aggregate_id, fourth.aggregate_type) == (account, "OutboxAccount")
    assert (fourth.event_type, fourth.tenant_id, fourth.status) == (
        "OutboxDeposited",
        tenant,
        "pending",
    )
    assert fourth.event_data["tenant_id"] == str(tenant)
    assert fourth.event_data["event_id"] == str(events[3].event_id)
    assert await _count(env, "events") == await _count(env, "event_outbox") == 30


async def test_a_conflicting_append_writes_no_outbox_row(env: Outboxed) -> None:
    account = uuid4()
    await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 2), 0)
    with pytest.raises(OptimisticLockError):
        await env.store.append_events(account, "OutboxAccount", deposits(account, 3, 2), 1)
    assert await _count(env, "event_outbox") == 2


async def test_duplicate_event_ids_get_no_second_row(env: Outboxed) -> None:
    account = uuid4()
    first = deposits(account, 1, 2)
    await env.store.append_events(account, "OutboxAccount", first, 0)
    await env.store.append_events(account, "OutboxAccount", first, -1)  # all already stored
    fresh = deposits(account, 3, 1)
    await env.store.append_events(account, "OutboxAccount", [first[1], *fresh, fresh[0]], -1)
    rows = await env.outbox.get_pending_events()
    assert [row.event_id for row in rows] == [*(e.event_id for e in first), fresh[0].event_id]
    assert await _count(env, "events") == 3


async def test_an_append_that_fails_writing_its_outbox_rows_stores_nothing(env: Outboxed) -> None:
    account = uuid4()
    await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 1), 0)
    await _inject_failure(env, "event_outbox", 3)
    with pytest.raises(EventStoreError, match="injected"):
        await env.store.append_events(account, "OutboxAccount", deposits(account, 2, 3), 1)
    assert await _count(env, "events") == await _count(env, "event_outbox") == 1
    assert await env.store.get_stream_version(account, "OutboxAccount") == 1


async def test_an_append_that_fails_writing_an_event_writes_no_outbox_row(env: Outboxed) -> None:
    account = uuid4()
    await _inject_failure(env, "events", 3)
    with pytest.raises(EventStoreError, match="injected"):
        await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 4), 0)
    assert await _count(env, "events") == await _count(env, "event_outbox") == 0


async def _inject_failure(env: Outboxed, table: str, n: int) -> None:
    """A trigger that aborts the insert into `table` of the row of the event with this `n`."""
    if env.backend == "sqlite":
        path = "NEW.event_data, '$.payload.n'" if table == "event_outbox" else "NEW.payload, '$.n'"
        await _execute(
            env,
            f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
            f"WHEN json_extract({path}) = {n} BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        return
    path = "NEW.event_data->'payload'->>'n'" if table == "event_outbox" else "NEW.payload->>'n'"
    await _execute(
        env,
        f"""CREATE FUNCTION fail_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF ({path})::int = {n} THEN
                RAISE EXCEPTION 'injected failure';
            END IF;
            RETURN NEW;
        END $$""",
        f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION fail_{table}()",
    )


# -- SQLite: the rows are the repository's rows --------------------------------------------------


async def test_sqlite_rows_equal_what_the_repository_writes(tmp_path: Path) -> None:
    register()
    account = uuid4()
    events = deposits(account, 1, 3)
    columns = (
        "event_id, event_type, aggregate_id, aggregate_type, tenant_id, event_data, status, "
        "retry_count, published_at, last_error"
    )
    async with SQLiteEventStore(str(tmp_path / "store.db"), outbox_enabled=True) as store:
        assert store.outbox_enabled
        await store.initialize()
        await store.append_events(account, "OutboxAccount", events, 0)
    async with SQLiteEventStore(str(tmp_path / "repo.db")) as other:
        repo = SQLiteOutboxRepository(other)
        for event in events:
            await repo.add_event(event)
    written = {}
    for name in ("store", "repo"):
        with sqlite3.connect(tmp_path / f"{name}.db") as db:
            written[name] = db.execute(
                f"SELECT {columns} FROM event_outbox ORDER BY rowid"
            ).fetchall()
            created = {row[0] for row in db.execute("SELECT created_at FROM event_outbox")}
            assert all(len(stamp) == len("2026-01-02T03:04:05.678901+00:00") for stamp in created)
    assert written["store"] == written["repo"]
    assert json.loads(written["store"][0][5])["payload"]["n"] == 1


async def test_sqlite_store_without_outbox_writes_no_rows(tmp_path: Path) -> None:
    register()
    account = uuid4()
    async with SQLiteEventStore(str(tmp_path / "plain.db")) as store:
        assert not store.outbox_enabled
        await store.initialize()
        await store.append_events(account, "OutboxAccount", deposits(account, 1, 2), 0)
    with sqlite3.connect(tmp_path / "plain.db") as db:
        assert db.execute("SELECT count(*) FROM event_outbox").fetchone()[0] == 0


async def test_sqlite_inline_write_their_outbox_rows_in_the_same_transaction(
    tmp_path: Path,
) -> None:
    """The inline path (appends in the loop's thread) writes the same outbox rows as the hop,
    and a conflicting inline append leaves none."""
    register()
    account = uuid4()
    path = tmp_path / "inline.db"
    async with SQLiteEventStore(str(path), outbox_enabled=True, inline=True) as store:
        await store.initialize()
        await store.append_events(account, "OutboxAccount", deposits(account, 1, 3), 0)
        await store.append_events(account, "OutboxAccount", deposits(account, 4, 1), 3)
        with pytest.raises(OptimisticLockError):
            await store.append_events(account, "OutboxAccount", deposits(account, 4, 2), 3)
        pending = await SQLiteOutboxRepository(store).get_pending_events()
    assert [entry.event_data["payload"]["n"] for entry in pending] == [1, 2, 3, 4]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 4


async def test_sqlite_outbox_needs_the_table(tmp_path: Path) -> None:
    """Without `initialize()` there is no outbox table: the append fails whole, with advice."""
    register()
    account = uuid4()
    path = tmp_path / "bare.db"
    with sqlite3.connect(path) as db:
        from eventsource.migrations import get_schema

        db.executescript(get_schema("events", "sqlite"))
    async with SQLiteEventStore(str(path), outbox_enabled=True) as store:
        with pytest.raises(EventStoreError, match="initialize"):
            await store.append_events(account, "OutboxAccount", deposits(account, 1, 1), 0)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


# -- in memory ---------------------------------------------------------------------------------


async def test_in_memory_store_fills_an_outbox_given_to_it() -> None:
    register()
    outbox = InMemoryOutboxRepository()
    store = InMemoryEventStore(outbox=outbox)
    account = uuid4()
    first = deposits(account, 1, 2)
    await store.append_events(account, "OutboxAccount", first, 0)
    with pytest.raises(OptimisticLockError):
        await store.append_events(account, "OutboxAccount", deposits(account, 3, 1), 0)
    await store.append_events(account, "OutboxAccount", [first[0], *deposits(account, 3, 1)], -1)
    rows = await outbox.get_pending_events()
    assert [row.event_data["payload"]["n"] for row in rows] == [1, 2, 3]
    assert {(row.aggregate_id, row.aggregate_type) for row in rows} == {(account, "OutboxAccount")}
    assert await InMemoryEventStore().get_event_count() == 0  # no outbox: nothing else changes


OLD_PG_OUTBOX = """CREATE TABLE event_outbox (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(), event_id UUID NOT NULL,
    event_type VARCHAR(255) NOT NULL, aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL, tenant_id UUID, event_data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), published_at TIMESTAMPTZ,
    retry_count INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    status VARCHAR(20) NOT NULL DEFAULT 'pending')"""


@pytest.mark.postgresql
@pytest.mark.parametrize("first_user", ["store", "repository"])
async def test_an_outbox_table_from_before_seq_is_upgraded(
    first_user: str, pg_session_factory: Any, pg_url: str, pg_schema: str
) -> None:
    """A table made without `seq` (the columns API.md §10 lists) gets it on first use, by the
    store or by a repository, and keeps its rows."""
    import asyncpg

    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository
    from eventsource.stores.postgresql import PostgreSQLEventStore

    register()
    conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
    try:
        await conn.execute(OLD_PG_OUTBOX)
        await conn.execute(
            "INSERT INTO event_outbox (event_id, event_type, aggregate_id, aggregate_type, "
            "event_data) VALUES (gen_random_uuid(), 'OutboxDeposited', gen_random_uuid(), "
            "'OutboxAccount', '{}'::jsonb)"
        )
    finally:
        await conn.close()
    store = PostgreSQLEventStore(pg_session_factory, outbox_enabled=True, enable_tracing=False)
    repo = PostgreSQLOutboxRepository(pg_session_factory, enable_tracing=False)
    account = uuid4()
    try:
        if first_user == "repository":
            assert len(await repo.get_pending_events()) == 1
        await store.append_events(account, "OutboxAccount", deposits(account, 1, 3), 0)
        pending = await repo.get_pending_events()
    finally:
        await store.close()
    assert [row.event_data.get("payload", {}).get("n") for row in pending] == [None, 1, 2, 3]
