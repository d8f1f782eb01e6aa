"""`SQLiteEventStore(inline_appends=True)`: appends run in the event loop's thread while the
connection is idle, and never make the loop wait for a lock."""

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
    async with SQLiteEventStore(db_path, inline_appends=True) as store:
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
        async with SQLiteEventStore(db_path) as default:  # the hop: other tasks run meanwhile
            turns, result = await ticker.turns_during(
                default.append_events(cart, CART, [item(cart)], 2)
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
    async with SQLiteEventStore(":memory:", inline_appends=True) as store:
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
    async with SQLiteEventStore(path, wal_mode=wal_mode, inline_appends=True) as store:
        await store.initialize()
        cart = uuid4()
        async with Ticker() as ticker:
            turns, result = await ticker.turns_during(
                store.append_events(cart, CART, [item(cart)], 0)
            )
        assert (turns == 0) is inline
        assert result.new_version == 1
