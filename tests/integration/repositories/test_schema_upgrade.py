"""One way to probe and upgrade a table (`eventsource.migrations.upgrade`), on both backends:
a table made by an older version (or from the documented columns, minus the newest) is seen as
out of date, and upgrading it twice is the same as once."""

from __future__ import annotations

import sqlite3

import pytest

from eventsource.migrations.upgrade import (
    postgresql_probe,
    postgresql_upgrade,
    probe_columns,
    tables,
    upgrade_sqlite,
)

OLD_CHECKPOINTS = "CREATE TABLE projection_checkpoints (projection_name TEXT PRIMARY KEY)"


def test_probe_columns_are_read_from_the_shipped_ddl() -> None:
    assert probe_columns("checkpoints") == (("projection_checkpoints", "cursor"),)
    assert probe_columns("events") == (("events", "id"), ("events", "tx_id"))
    assert probe_columns("dlq") == (("dead_letter_queue", "resolved_by"),)  # no ALTER: last
    assert "cursor" in tables("checkpoints", "sqlite")["projection_checkpoints"]


def test_sqlite_upgrade_adds_later_columns_and_is_idempotent() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(OLD_CHECKPOINTS)
    db.commit()
    for _ in range(2):
        upgrade_sqlite(db, "checkpoints")
        columns = [row[1] for row in db.execute("PRAGMA table_info(projection_checkpoints)")]
        assert "cursor" in columns
        assert not db.in_transaction
    db.execute("BEGIN")
    upgrade_sqlite(db, "snapshots")
    assert db.in_transaction  # the caller's transaction is left open, uncommitted
    db.rollback()
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'snapshots'").fetchall()


@pytest.mark.postgresql
async def test_postgresql_probe_tells_an_old_table_from_a_current_one(
    pg_url: str, pg_schema: str
) -> None:
    import asyncpg

    from eventsource.migrations import get_schema

    conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
    try:
        probe = postgresql_probe(["checkpoints", "dlq"])
        assert await conn.fetchval(probe) is False  # nothing there
        await conn.execute(OLD_CHECKPOINTS)
        await conn.execute(get_schema("dlq", "postgresql"))
        assert await conn.fetchval(probe) is False  # checkpoints lack `cursor`
        for _ in range(2):
            async with conn.transaction():
                for statement in postgresql_upgrade(["checkpoints"], lock_key=42):
                    await conn.execute(statement)
            assert await conn.fetchval(probe) is True
    finally:
        await conn.close()
