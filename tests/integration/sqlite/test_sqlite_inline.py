"""`SQLiteEventStore` appends and reads run in the event loop's thread (the default,
`inline=True`) while the connection is idle, never make the loop wait for a lock, and go to the
driver's thread for large batches, after slow inline appends, when SQLite answers busy, and
with `inline=False`."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from _sqlite_support import item

from eventsource.exceptions import EventStoreError
from eventsource.stores.sqlite import SQLiteEventStore

CART = "SqliteCart"


class Ticker:
    """Counts the turns the event loop gives to a background task."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    async def turns_during(self, action: Awaitable[Any]) -> tuple[int, Any]:
        before = self.ticks
        result = await action
        return self.ticks - before, result


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "events.db")


@pytest.fixture
async def inline_store(db_path: str) -> AsyncIterator[SQLiteEventStore]:
    async with SQLiteEventStore(db_path, inline=True) as store:
        await store.initialize()
        yield store


async def test_inline_append_runs_without_giving_the_loop_away(
    inline_store: SQLiteEventStore, db_path: str
) -> None:
    cart = uuid4()
    async with Ticker() as ticker:
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [item(cart), item(cart)], 0)
        )
        assert turns == 0
        assert (result.new_version, result.global_position) == (2, 2)
        # The hop: other tasks run meanwhile.
        async with SQLiteEventStore(db_path, inline=False) as hopping:
            turns, result = await ticker.turns_during(
                hopping.append_events(cart, CART, [item(cart)], 2)
            )
        assert turns > 0
        assert result.new_version == 3
    assert [e.sku for e in (await inline_store.get_events(cart, CART)).events] == ["sku"] * 3


async def test_inline_append_never_waits_for_a_lock_in_the_loop(
    inline_store: SQLiteEventStore, db_path: str
) -> None:
    blocker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    # Released from another thread: an append waiting inside the loop would then succeed
    # there, and the ticker would get no turn.
    unlock = threading.Timer(0.1, blocker.execute, ("ROLLBACK",))
    unlock.start()
    cart = uuid4()
    async with Ticker() as ticker:
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [item(cart)], 0)
        )
    unlock.join()
    blocker.close()
    assert turns > 0  # it waited in the driver's thread
    assert (result.new_version, result.global_position) == (1, 1)


async def test_inline_append_with_stored_ids_is_redone_in_the_driver_thread(
    inline_store: SQLiteEventStore,
) -> None:
    cart = uuid4()
    first = [item(cart, "a"), item(cart, "b")]
    await inline_store.append_events(cart, CART, first, 0)
    async with Ticker() as ticker:
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [first[1], item(cart, "c")], 2)
        )
    assert turns > 0  # rolled back in the loop, then redone by the hop
    assert (result.new_version, result.global_position) == (3, 3)
    assert [e.sku for e in (await inline_store.get_events(cart, CART)).events] == ["a", "b", "c"]


async def test_file_store_appends_inline_while_a_read_is_in_flight(
    inline_store: SQLiteEventStore,
) -> None:
    # On a WAL file the inline appends have a connection of their own.
    link = inline_store._connected()
    release = threading.Event()
    slow = asyncio.create_task(link.run(lambda db: release.wait(5)))
    await asyncio.sleep(0)
    cart = uuid4()
    async with Ticker() as ticker:
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [item(cart)], 0)
        )
    assert turns == 0
    assert result.new_version == 1
    release.set()
    assert await slow is True


@pytest.fixture
async def memory_store() -> AsyncIterator[SQLiteEventStore]:
    async with SQLiteEventStore(":memory:", inline=True) as store:
        await store.initialize()
        yield store


async def test_memory_store_appends_take_the_hop_while_other_work_is_in_flight(
    memory_store: SQLiteEventStore,
) -> None:
    # One connection: an inline append must not run beside a call in the driver's thread.
    link = memory_store._connected()
    release = threading.Event()
    slow = asyncio.create_task(link.run(lambda db: release.wait(5)))
    await asyncio.sleep(0)
    assert not link.idle
    cart = uuid4()
    append = asyncio.create_task(memory_store.append_events(cart, CART, [item(cart)], 0))
    await asyncio.sleep(0.02)
    assert not append.done()  # queued behind the slow call, not run beside it
    release.set()
    assert await slow is True
    assert (await append).new_version == 1
    assert link.idle


async def test_a_cancelled_call_keeps_the_connection_busy_until_it_has_run(
    memory_store: SQLiteEventStore,
) -> None:
    link = memory_store._connected()
    release, finished = threading.Event(), threading.Event()

    def slow(db: sqlite3.Connection) -> None:
        release.wait(5)
        finished.set()

    call = asyncio.create_task(link.run(slow))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not link.idle  # the function is still running in the driver's thread
    assert not link.can_run_now
    release.set()
    # The driver's thread runs calls in order: after two more, the store's own no-op queued
    # on cancelling has run as well.
    for _ in range(2):
        await link.run(lambda db: None)
    assert finished.is_set()
    assert link.idle


@pytest.mark.parametrize(
    ("database", "wal_mode", "inline"),
    [(":memory:", False, True), ("file", False, False), ("file", True, True)],
)
async def test_inline_only_where_a_commit_cannot_wait(
    tmp_path: Path, database: str, wal_mode: bool, inline: bool
) -> None:
    # A rollback-journal commit waits for readers: those appends always take the hop.
    path = str(tmp_path / "e.db") if database == "file" else database
    async with SQLiteEventStore(path, wal_mode=wal_mode, inline=True) as store:
        await store.initialize()
        cart = uuid4()
        async with Ticker() as ticker:
            turns, result = await ticker.turns_during(
                store.append_events(cart, CART, [item(cart)], 0)
            )
        assert (turns == 0) is inline
        assert result.new_version == 1


async def test_appends_are_inline_by_default(db_path: str) -> None:
    async with SQLiteEventStore(db_path) as store, Ticker() as ticker:
        await store.initialize()
        assert store.inline is True
        assert SQLiteEventStore(db_path, inline=False).inline is False
        cart = uuid4()
        turns, _ = await ticker.turns_during(store.append_events(cart, CART, [item(cart)], 0))
        assert turns == 0


async def test_large_batches_take_the_hop(inline_store: SQLiteEventStore) -> None:
    cart = uuid4()
    async with Ticker() as ticker:
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [item(cart) for _ in range(256)], 0)
        )
        assert turns == 0
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [item(cart) for _ in range(257)], 256)
        )
        assert turns > 0
    assert (result.new_version, result.global_position) == (513, 513)


async def test_slow_inline_send_the_next_ones_to_the_driver_thread(
    inline_store: SQLiteEventStore,
) -> None:
    from eventsource.stores import sqlite as module

    gate = inline_store._inline_gate
    cart = uuid4()
    version = 0

    async def append_turns() -> int:
        nonlocal version
        turns, result = await ticker.turns_during(
            inline_store.append_events(cart, CART, [item(cart)], version)
        )
        version = result.new_version
        return turns

    async with Ticker() as ticker:
        assert await append_turns() == 0
        for _ in range(3):  # a disk that took 30 ms per commit, as seen by the gate
            gate.took(0.030)
        assert gate.hops_left == module._INLINE_BACK_OFF
        gate.hops_left = 3  # (shortened) the next appends hop, then inlining is tried again
        hopped = [await append_turns() for _ in range(3)]
        assert all(turns > 0 for turns in hopped), hopped
        assert await append_turns() == 0
    assert (await inline_store.get_events(cart, CART)).version == 5


def test_the_gate_averages_durations_before_closing() -> None:
    from eventsource.stores.sqlite import _INLINE_BACK_OFF, _InlineGate

    gate = _InlineGate()
    for _ in range(100):  # a fast disk, with the odd slow checkpoint
        gate.took(0.0002)
        assert gate.is_open()
    gate.took(0.020)
    assert gate.is_open()  # one slow commit does not close it
    for _ in range(20):
        gate.took(0.010)
    assert not gate.is_open()
    assert sum(not gate.is_open() for _ in range(_INLINE_BACK_OFF)) == _INLINE_BACK_OFF - 1
    assert gate.is_open()


async def test_reads_run_in_the_loop_thread_and_hop_with_inline_false(db_path: str) -> None:
    cart = uuid4()
    for inline in (True, False):
        async with SQLiteEventStore(db_path, inline=inline) as store, Ticker() as ticker:
            await store.initialize()
            if inline:
                await store.append_events(cart, CART, [item(cart, str(n)) for n in range(5)], 0)
            reads = [
                store.get_events(cart, CART),
                store.get_events(cart),
                store.get_stream_version(cart, CART),
                store.event_exists(uuid4()),
                store.get_global_position(),
                store.get_events_by_type(CART),
                _all(store),
            ]
            results = [await ticker.turns_during(read) for read in reads]
            turns = [turns for turns, _ in results]
            assert all(t == 0 for t in turns) if inline else all(t > 0 for t in turns), turns
            stream, untyped, version, exists, position, by_type, every = (r for _, r in results)
            assert [e.sku for e in stream.events] == [e.sku for e in untyped.events]
            assert [e.sku for e in stream.events] == ["0", "1", "2", "3", "4"]
            assert (version, exists, position, len(by_type)) == (5, False, 5, 5)
            assert [s.stream_position for s in every] == [1, 2, 3, 4, 5]


async def _all(store: SQLiteEventStore) -> list[Any]:
    return [stored async for stored in store.read_all()]


async def test_an_inline_read_does_not_see_an_open_write_and_does_not_wait_for_it(
    inline_store: SQLiteEventStore, db_path: str
) -> None:
    cart = uuid4()
    await inline_store.append_events(cart, CART, [item(cart)], 0)
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
        " timestamp, payload) VALUES (?, 'SqliteItemAdded', ?, ?, 2, '', '{}')",
        (str(uuid4()), str(cart), CART),
    )
    try:
        async with Ticker() as ticker:
            turns, stream = await ticker.turns_during(inline_store.get_events(cart, CART))
        assert turns == 0
        assert stream.version == 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_read_that_finds_the_file_busy_is_redone_in_the_driver_thread(
    inline_store: SQLiteEventStore,
) -> None:
    # A reader in WAL mode is busy only in rare moments (another connection recovering or
    # resetting the WAL); the first attempt here answers busy the way SQLite does.
    cart = uuid4()
    await inline_store.append_events(cart, CART, [item(cart)], 0)
    link = inline_store._connected()
    loop_thread = threading.get_ident()
    ran_in: list[str] = []

    def count(db: sqlite3.Connection) -> int:
        if threading.get_ident() == loop_thread:
            ran_in.append("loop")
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise busy
        ran_in.append("driver")
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    assert await link.read(count) == 1
    assert ran_in == ["loop", "driver"]

    def broken(db: sqlite3.Connection) -> None:
        db.execute("SELECT * FROM nowhere")

    with pytest.raises(EventStoreError, match="nowhere"):  # other errors are not retried
        await link.read(broken)
