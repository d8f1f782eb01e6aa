"""SQLiteEventStore on real database files: lifecycle, persistence, failures, bad rows."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from _sqlite_support import SqliteItemAdded, append_process, item

from eventsource import (
    ExpectedVersion,
    OptimisticLockError,
    ReadDirection,
    ReadOptions,
    tenant_scope,
)
from eventsource.exceptions import (
    CorruptEventError,
    EventStoreError,
    SerializationError,
    StoreNotConnectedError,
)
from eventsource.migrations import get_schema
from eventsource.stores.sqlite import SQLITE_AVAILABLE, SQLiteEventStore

CART = "SqliteCart"
BACKWARD = ReadDirection.BACKWARD


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "events.db")


@pytest.fixture
async def store(db_path: str) -> AsyncIterator[SQLiteEventStore]:
    async with SQLiteEventStore(db_path) as opened:
        await opened.initialize()
        yield opened


def test_available() -> None:
    assert SQLITE_AVAILABLE is True


async def test_memory_defaults_and_custom_settings_are_echoed() -> None:
    async with SQLiteEventStore(":memory:") as store:
        assert store.database == ":memory:"
        assert store.wal_mode is True
        assert store.busy_timeout == 5000
        assert store.is_connected is True
        await store.initialize()
        cart = uuid4()
        result = await store.append_events(cart, CART, [item(cart)], ExpectedVersion.NO_STREAM)
        assert (result.success, result.new_version, result.global_position) == (True, 1, 1)
    assert store.is_connected is False
    custom = SQLiteEventStore(":memory:", wal_mode=False, busy_timeout=10000)
    assert (custom.wal_mode, custom.busy_timeout, custom.is_connected) == (False, 10000, False)


async def test_wal_mode_is_applied_to_files_only(db_path: str) -> None:
    async with SQLiteEventStore(db_path) as store:
        await store.initialize()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_initialize_without_async_with_and_idempotent_close(db_path: str) -> None:
    store = SQLiteEventStore(db_path)
    await store.initialize()
    await store.initialize()  # idempotent: tables exist already
    assert store.is_connected
    cart = uuid4()
    await store.append_events(cart, CART, [item(cart)], 0)
    await store.close()
    await store.close()
    assert not store.is_connected
    conn = sqlite3.connect(db_path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {
        "events",
        "event_outbox",
        "projection_checkpoints",
        "dead_letter_queue",
        "snapshots",
    } <= tables


async def test_file_data_survives_new_instances_and_processes(db_path: str) -> None:
    cart = uuid4()
    first = item(cart, "a")
    async with SQLiteEventStore(db_path) as store:
        await store.initialize()
        await store.append_events(cart, CART, [first], 0)
    other = uuid4()
    child = multiprocessing.get_context("spawn").Process(
        target=append_process, args=(db_path, str(other), 3)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    async with SQLiteEventStore(db_path) as store:
        stream = await store.get_events(cart, CART)
        assert stream.events == [first]
        assert isinstance(stream.events[0], SqliteItemAdded)
        assert [e.sku for e in (await store.get_events(other, CART)).events] == ["p0", "p1", "p2"]
        assert await store.get_global_position() == 4
        positions = [s.global_position async for s in store.read_all()]
        assert positions == [1, 2, 3, 4]


async def test_data_calls_while_disconnected_raise(db_path: str) -> None:
    store = SQLiteEventStore(db_path)
    cart = uuid4()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.append_events(cart, CART, [item(cart)], 0),
        lambda: store.get_events(cart, CART),
        lambda: store.get_events_by_type(CART),
        lambda: store.event_exists(uuid4()),
        store.get_global_position,
        lambda: store.get_stream_version(cart, CART),
        store.read_all,
        lambda: store.read_stream(f"{cart}:{CART}"),
    ]
    for call in calls:
        with pytest.raises(StoreNotConnectedError, match=r"initialize\(\).*async with"):
            await call()
    await store.initialize()
    await store.close()
    with pytest.raises(RuntimeError, match="not connected"):
        await store.get_global_position()


async def test_missing_tables_point_to_initialize(db_path: str) -> None:
    async with SQLiteEventStore(db_path) as store:
        with pytest.raises(StoreNotConnectedError, match=r"initialize\(\)"):
            await store.get_global_position()


async def test_store_works_over_the_shipped_schema(db_path: str) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript(get_schema("events", "sqlite"))
    conn.close()
    cart = uuid4()
    async with SQLiteEventStore(db_path) as store:
        await store.append_events(cart, CART, [item(cart), item(cart)], 0)
        assert (await store.get_events(cart, CART)).version == 2


def _insert_raw(db_path: str, event_type: str, payload: str) -> str:
    """Store a row by hand, bypassing the store; returns its event id."""
    event_id, cart = str(uuid4()), str(uuid4())
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
            " timestamp, payload) VALUES (?, ?, ?, ?, 1, '2025-01-01T00:00:00.000000+00:00', ?)",
            (event_id, event_type, cart, CART, payload),
        )
    conn.close()
    return event_id


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [("SqliteItemAdded", "{not json"), ("NoSuchSqliteEvent", '{"sku": "x"}')],
    ids=["bad-json", "unknown-type"],
)
async def test_corrupt_rows_raise_corrupt_event_error_naming_the_row(
    store: SQLiteEventStore, db_path: str, event_type: str, payload: str
) -> None:
    cart = uuid4()
    await store.append_events(cart, CART, [item(cart)], 0)
    event_id = _insert_raw(db_path, event_type, payload)
    with pytest.raises(CorruptEventError) as caught:
        await store.get_events_by_type(CART)
    assert event_id in str(caught.value)
    assert event_type in str(caught.value)
    seen: list[int] = []

    async def iterate() -> None:
        async for stored in store.read_all():
            seen.append(stored.global_position)

    with pytest.raises(CorruptEventError) as caught:
        await iterate()
    assert seen == [1]  # the good event before the bad row still arrives
    assert caught.value.event_type == event_type
    assert str(caught.value.event_id) == event_id
    assert any("global position 2" in note and db_path in note for note in caught.value.__notes__)
    with pytest.raises(CorruptEventError):
        await store.read_all()


async def test_unserialisable_event_raises_before_anything_is_written(
    store: SQLiteEventStore,
) -> None:
    cart = uuid4()
    good, bad = item(cart, "ok"), item(cart, "bad").with_metadata(handle=object())
    with pytest.raises(SerializationError):
        await store.append_events(cart, CART, [good, bad], 0)
    assert await store.get_global_position() == 0
    assert not await store.event_exists(good.event_id)


async def test_batch_failing_part_way_leaves_nothing(store: SQLiteEventStore, db_path: str) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TRIGGER refuse_third BEFORE INSERT ON events WHEN NEW.version = 3 "
        "BEGIN SELECT RAISE(ABORT, 'third event refused'); END"
    )
    conn.commit()
    cart = uuid4()
    events = [item(cart, str(i)) for i in range(5)]
    with pytest.raises(EventStoreError, match="third event refused") as caught:
        await store.append_events(cart, CART, events, 0)
    assert not isinstance(caught.value, sqlite3.Error)
    assert await store.get_stream_version(cart, CART) == 0
    assert await store.get_global_position() == 0
    assert not any([await store.event_exists(e.event_id) for e in events])
    conn.execute("DROP TRIGGER refuse_third")
    conn.commit()
    conn.close()
    result = await store.append_events(cart, CART, events, 0)  # no transaction was left open
    assert (result.new_version, result.global_position) == (5, 5)


async def test_large_batch_keeps_order_and_skips_duplicates_anywhere_in_it(
    store: SQLiteEventStore,
) -> None:
    cart = uuid4()
    stored_before = [item(cart, f"old{i}") for i in range(2)]
    await store.append_events(cart, CART, stored_before, 0)
    events = [item(cart, str(i)) for i in range(150)]
    events[70], events[149] = stored_before  # already stored: skipped
    events[100] = events[5]  # repeated within the batch: the second one is skipped
    result = await store.append_events(cart, CART, events, 2)
    kept = stored_before + [e for i, e in enumerate(events) if i not in (70, 100, 149)]
    assert (result.new_version, result.global_position) == (149, 149)
    stored = (await store.read_stream(f"{cart}:{CART}")).events
    assert [s.event_id for s in stored] == [e.event_id for e in kept]
    assert [s.stream_position for s in stored] == list(range(1, 150))
    assert [s.global_position for s in stored] == list(range(1, 150))
    again = await store.append_events(cart, CART, events, ExpectedVersion.ANY)  # all duplicates
    assert (again.new_version, again.global_position) == (149, 149)


async def test_failure_late_in_a_large_batch_leaves_nothing(
    store: SQLiteEventStore, db_path: str
) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TRIGGER refuse_late BEFORE INSERT ON events WHEN NEW.version = 140 "
        "BEGIN SELECT RAISE(ABORT, 'late event refused'); END"
    )
    conn.commit()
    conn.close()
    cart = uuid4()
    with pytest.raises(EventStoreError, match="late event refused"):
        await store.append_events(cart, CART, [item(cart, str(i)) for i in range(150)], 0)
    assert await store.get_global_position() == 0
    assert await store.get_stream_version(cart, CART) == 0


async def test_lock_held_past_busy_timeout_is_a_typed_error(db_path: str) -> None:
    async with SQLiteEventStore(db_path, busy_timeout=100) as store:
        await store.initialize()
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            cart = uuid4()
            with pytest.raises(EventStoreError, match="locked") as caught:
                await store.append_events(cart, CART, [item(cart)], ExpectedVersion.ANY)
            assert db_path in str(caught.value)
            assert "busy_timeout=100" in str(caught.value)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        result = await store.append_events(cart, CART, [item(cart)], ExpectedVersion.ANY)
        assert result.new_version == 1


async def test_version_conflict_reports_the_real_version(store: SQLiteEventStore) -> None:
    cart = uuid4()
    await store.append_events(cart, CART, [item(cart), item(cart)], 0)
    with pytest.raises(OptimisticLockError) as caught:
        await store.append_events(cart, CART, [item(cart)], 1)
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    other = uuid4()
    with pytest.raises(OptimisticLockError) as caught:
        await store.append_events(other, CART, [item(other)], ExpectedVersion.STREAM_EXISTS)
    assert (caught.value.expected_version, caught.value.actual_version) == (-2, 0)


async def test_read_all_pages_through_more_than_one_page(store: SQLiteEventStore) -> None:
    cart = uuid4()
    await store.append_events(cart, CART, [item(cart, str(i)) for i in range(2500)], 0)
    positions = [s.global_position async for s in store.read_all()]
    assert positions == list(range(1, 2501))
    tail = await store.read_all(ReadOptions(from_position=990, limit=1020))
    assert [s.global_position for s in tail.events] == list(range(991, 2011))
    versions = [s.stream_position async for s in store.read_stream(str(cart))]
    assert versions == list(range(1, 2501))


async def test_positions_beyond_64_bits_mean_after_everything(store: SQLiteEventStore) -> None:
    """SQLite integers are 64-bit: a larger "after" bound selects nothing, as in memory."""
    cart = uuid4()
    await store.append_events(cart, CART, [item(cart)], 0)
    for huge in (2**63 - 1, 2**63, 10**30):
        assert (await store.read_all(ReadOptions(from_position=huge))).events == []
        after = ReadOptions(from_position=huge)
        assert (await store.read_stream(f"{cart}:{CART}", after)).events == []
        assert len(await store.read_all(ReadOptions(from_position=huge, direction=BACKWARD))) == 0
        assert (await store.read_committed(str(huge))).events == []
        assert (await store.get_events(cart, CART, from_version=huge)).events == []
        assert await store.committed_lag(str(huge)) == 0
        with tenant_scope(uuid4()):
            assert await store.committed_lag(str(huge)) == 0


async def test_text_sqlite_cannot_take_is_a_typed_error(store: SQLiteEventStore) -> None:
    """A lone surrogate has no UTF-8 form: the driver's UnicodeEncodeError becomes typed."""
    cart = uuid4()
    with pytest.raises(EventStoreError, match="surrogate"):
        await store.get_events(cart, "Cart\ud800")
    with pytest.raises(EventStoreError, match="surrogate"):
        await store.get_events_by_type("Cart\ud800")
    with pytest.raises(EventStoreError, match="surrogate"):
        await store.read_stream(f"{cart}:Cart\ud800")
