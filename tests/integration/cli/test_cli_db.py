"""`eventsource db init | check | sql` on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from cli_support import (
    fails,
    invoke,
    ok,
    ok_json,
    store_url_fixture,  # noqa: F401 - fixtures
)

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli._queries import table_columns
from eventsource.cli._schema import expected_tables
from eventsource.migrations import get_schema


def _columns(url: str) -> dict[str, set[str]]:
    async def read() -> dict[str, set[str]]:
        parsed = parse_url(url)
        db = await Backend.open(parsed, BrowsingRegistry(None), create=False)
        try:
            return await table_columns(db, sorted(expected_tables(db.kind)))
        finally:
            await db.close()

    return asyncio.run(read())


def _empty_database(url: str) -> None:
    """An existing database without tables (a fresh PostgreSQL schema already is one)."""
    if url.startswith("sqlite"):
        sqlite3.connect(url.removeprefix("sqlite:///")).close()


def test_check_on_an_empty_database_exits_1_and_says_to_run_init(store_url: str) -> None:
    _empty_database(store_url)
    line = fails(store_url, "db", "check", code=1)
    assert "missing tables" in line
    assert f"eventsource --url {store_url} db init" in line


def test_check_json_names_every_missing_table(store_url: str) -> None:
    _empty_database(store_url)
    result = invoke(store_url, "--json", "db", "check")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {t["table"] for t in report["tables"] if not t["exists"] and not t["ok"]} == {
        "events", "event_outbox", "projection_checkpoints", "dead_letter_queue", "snapshots",
    }
    optional = {t["table"]: t["feature"] for t in report["tables"] if t["optional"]}
    assert optional == {
        "stream_metadata": "retention", "purge_lease": "retention", "event_tags": "dcb",
        "transfer_progress": "transfer", "transfer_positions": "transfer",
    }
    assert report["fix"].endswith("db init")


def test_init_creates_exactly_the_shipped_tables_and_is_idempotent(store_url: str) -> None:
    init = ok(store_url, "db", "init", "--yes")
    assert "Will create or upgrade" in init.stderr
    ok(store_url, "db", "check")
    kind = parse_url(store_url).backend
    assert _columns(store_url) == {t: set(c) for t, c in expected_tables(kind).items()}
    again = ok(store_url, "db", "init")  # nothing to do: no question asked
    assert "nothing to do" in again.stderr


def test_init_declined_creates_nothing(store_url: str) -> None:
    line = fails(store_url, "db", "init", code=1, input="n\n")
    assert "aborted: nothing was changed" in line
    assert _columns(store_url) == {}


def test_init_upgrades_a_table_lacking_a_later_column(store_url: str) -> None:
    ok(store_url, "db", "init", "--yes")
    kind = parse_url(store_url).backend
    drop = "ALTER TABLE projection_checkpoints DROP COLUMN cursor"

    async def drop_column() -> None:
        db = await Backend.open(parse_url(store_url), BrowsingRegistry(None), create=False)
        try:
            if kind == "sqlite":
                link = await db.store._open()  # type: ignore[attr-defined]
                await link.run(lambda conn: conn.execute(drop))
            else:
                async with db.engine.begin() as conn:
                    await conn.exec_driver_sql(drop)
        finally:
            await db.close()

    asyncio.run(drop_column())
    line = fails(store_url, "db", "check", code=1)
    assert "lacking columns projection_checkpoints" in line
    ok(store_url, "db", "init", "--yes")
    ok(store_url, "db", "check")


def test_sql_prints_the_shipped_ddl() -> None:
    every = ok(None, "db", "sql", "--backend", "sqlite").stdout
    assert every.rstrip() == get_schema("all", "sqlite").rstrip()
    events = ok(None, "db", "sql", "--backend", "postgresql", "--table", "events").stdout
    assert events.rstrip() == get_schema("events", "postgresql").rstrip()
    assert ok_json(None, "db", "sql", "--backend", "sqlite", "--table", "dlq")["sql"] == (
        get_schema("dlq", "sqlite")
    )
    assert "not a sqlite schema" in fails(
        None, "db", "sql", "--backend", "sqlite", "--table", "events_partitioned", code=2
    )
    assert "needs --backend" in fails(None, "db", "sql", code=2)
