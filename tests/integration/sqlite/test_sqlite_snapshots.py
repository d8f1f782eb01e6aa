"""SQLiteSnapshotStore on real databases: sharing a file with the event store, ":memory:"
lifetime, concurrent writers, process exit, spans."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

import eventsource.snapshots
from eventsource import AggregateRepository
from eventsource.snapshots import InMemorySnapshotStore, SnapshotStore, SQLiteSnapshotStore
from eventsource.stores.sqlite import SQLiteEventStore
from eventsource.tenancy import tenant_scope
from eventsource.testing.contract.snapshot import make_snapshot
from eventsource.testing.contract.snapshot_loading import LEDGER, Ledger

SRC = Path(__file__).resolve().parents[3] / "src"


def test_available_and_path_property(tmp_path: Path) -> None:
    assert eventsource.snapshots.SQLITE_AVAILABLE is True
    assert SQLiteSnapshotStore(":memory:").database_path == ":memory:"
    assert SQLiteSnapshotStore(tmp_path / "s.db").database_path == str(tmp_path / "s.db")


async def test_shares_a_file_with_the_event_store(tmp_path: Path) -> None:
    path = str(tmp_path / "app.db")
    async with SQLiteEventStore(path) as events, SQLiteSnapshotStore(path) as snapshots:
        await events.initialize()  # creates the snapshots table too
        repo = AggregateRepository(
            events, Ledger, LEDGER, snapshot_store=snapshots, snapshot_threshold=10
        )
        ledger = repo.create_new(uuid4())
        for amount in range(15):
            ledger.deposit(amount)
        await repo.save(ledger)
        taken = await snapshots.get_snapshot(ledger.aggregate_id, LEDGER)
        assert taken is not None
        assert taken.version == 15
        loaded = await repo.load(ledger.aggregate_id)
        assert (loaded.version, loaded.state) == (15, ledger.state)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM snapshots").fetchall() == [(15,)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # the store's choice


async def test_memory_snapshots_live_as_long_as_the_connection() -> None:
    store = SQLiteSnapshotStore(":memory:")
    saved = make_snapshot()
    await store.save_snapshot(saved)
    for _ in range(3):  # every call uses the one connection
        assert await store.get_snapshot(saved.aggregate_id, "Order") == saved
    await store.close()
    assert await store.get_snapshot(saved.aggregate_id, "Order") is None  # a new, empty database
    await store.close()


async def test_two_stores_on_one_file_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SQLiteSnapshotStore(path) as first, SQLiteSnapshotStore(path) as second:
        snapshots = [make_snapshot(version=n) for n in range(40)]
        tenants = [uuid4(), uuid4()]

        async def save(store: SnapshotStore, n: int) -> None:
            with tenant_scope(tenants[n % 2]):
                await store.save_snapshot(snapshots[n])

        await asyncio.gather(*(save((first, second)[n % 2], n) for n in range(40)))
        for n, snapshot in enumerate(snapshots):
            with tenant_scope(tenants[n % 2]):
                assert await first.get_snapshot(snapshot.aggregate_id, "Order") == snapshot
        with tenant_scope(tenants[0]):
            assert await second.delete_snapshots_by_type("Order") == 20
        assert await first.delete_snapshots_by_type("Order") == 20


@pytest.mark.parametrize("database", [":memory:", "FILE"])
def test_a_store_never_closed_lets_the_process_exit(tmp_path: Path, database: str) -> None:
    target = str(tmp_path / "left-open.db") if database == "FILE" else database
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(SRC)!r})
        from eventsource.snapshots import SQLiteSnapshotStore
        from eventsource.testing.contract.snapshot import make_snapshot

        async def main():
            store = SQLiteSnapshotStore({target!r})
            saved = make_snapshot()
            await store.save_snapshot(saved)
            assert await store.get_snapshot(saved.aggregate_id, "Order") == saved

        asyncio.run(main())
        print("done")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_operations_emit_the_documented_spans(kind: str, telemetry: Any) -> None:
    store: Any = InMemorySnapshotStore() if kind == "memory" else SQLiteSnapshotStore(":memory:")
    assert store.tracing_enabled
    saved = make_snapshot()
    await store.save_snapshot(saved)
    await store.get_snapshot(saved.aggregate_id, "Order")
    await store.snapshot_exists(saved.aggregate_id, "Order")
    await store.delete_snapshot(saved.aggregate_id, "Order")
    names = [name for name in telemetry.names() if name.startswith("eventsource.snapshot.")]
    assert names == [f"eventsource.snapshot.{op}" for op in ("save", "get", "exists", "delete")]
    attributes = telemetry.one("eventsource.snapshot.save").attributes or {}
    assert attributes["eventsource.aggregate.id"] == str(saved.aggregate_id)
    assert attributes["eventsource.aggregate.type"] == "Order"
    untraced: Any = SQLiteSnapshotStore(":memory:", enable_tracing=False)
    assert not untraced.tracing_enabled
    if kind == "sqlite":
        await store.close()
