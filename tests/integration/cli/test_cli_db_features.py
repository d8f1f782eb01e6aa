"""`db check` and the optional features' tables (retention, DCB, transfer): all absent is
fine, a feature partly set up (a table, or a column, missing) fails; `db init` creates the
retention tables but not the ones DCB stores and copy jobs make on first use."""

from __future__ import annotations

import asyncio

from cli_support import fails, ok, ok_json, store_url_fixture  # noqa: F401 - fixture

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._events import BrowsingRegistry


def _execute(url: str, *statements: str) -> None:
    async def go() -> None:
        db = await Backend.open(parse_url(url), BrowsingRegistry(None), create=False)
        try:
            if db.kind == "sqlite":
                link = await db.store._open()  # type: ignore[attr-defined]
                for sql in statements:
                    await link.run(lambda conn, sql=sql: conn.execute(sql))
            else:
                async with db.engine.begin() as conn:
                    for sql in statements:
                        await conn.exec_driver_sql(sql)
        finally:
            await db.close()

    asyncio.run(go())


def _states(url: str) -> dict[str, dict[str, object]]:
    return {t["table"]: t for t in ok_json(url, "db", "check")["tables"]}


def test_after_init_the_first_use_features_are_optional(store_url: str) -> None:
    ok(store_url, "db", "init", "--yes")
    states = _states(store_url)
    assert states["stream_metadata"]["exists"] is True
    for table in ("event_tags", "transfer_progress", "transfer_positions"):
        assert (states[table]["exists"], states[table]["optional"], states[table]["ok"]) == (
            False, True, True
        )
    text = ok(store_url, "db", "check").stdout
    assert "not created (optional: dynamic consistency boundaries" in text


def test_without_any_retention_table_the_check_passes_and_init_adds_them(store_url: str) -> None:
    ok(store_url, "db", "init", "--yes")
    _execute(store_url, "DROP TABLE purge_lease", "DROP TABLE stream_metadata")
    assert _states(store_url)["stream_metadata"]["optional"] is True
    init = ok(store_url, "db", "init", "--yes")
    assert "stream_metadata (missing)" in init.stderr
    assert _states(store_url)["purge_lease"]["exists"] is True


def test_a_feature_partly_set_up_fails_the_check(store_url: str) -> None:
    ok(store_url, "db", "init", "--yes")
    _execute(store_url, "DROP TABLE purge_lease")
    line = fails(store_url, "db", "check", code=1)
    assert "missing tables purge_lease" in line
    ok(store_url, "db", "init", "--yes")
    ok(store_url, "db", "check")


def test_a_first_use_table_lacking_a_column_fails_the_check(store_url: str) -> None:
    ok(store_url, "db", "init", "--yes")
    _execute(
        store_url,
        "CREATE TABLE transfer_progress (job TEXT PRIMARY KEY, source_position BIGINT)",
        "CREATE TABLE transfer_positions (job TEXT, source_position BIGINT,"
        " target_position BIGINT)",
    )
    line = fails(store_url, "db", "check", code=1)
    assert "tables lacking columns transfer_progress" in line
    assert "made by their feature on first use, not by db init" in line
