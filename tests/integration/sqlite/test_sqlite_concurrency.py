"""SQLiteEventStore under contention and crashes: many connections and processes on one file."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from _sqlite_support import big_batch_process, item, race_for_versions, race_process

from eventsource import ExpectedVersion
from eventsource.stores.sqlite import SQLiteEventStore

CART = "SqliteCart"
WRITERS = 16


@pytest.fixture
async def db_path(tmp_path: Path) -> str:
    path = str(tmp_path / "events.db")
    async with SQLiteEventStore(path) as store:
        await store.initialize()
    return path


async def _check_race(
    path: str,
    stream: UUID,
    outcomes: list[tuple[list[tuple[int, str]], list[tuple[int, int]]]],
    wins_each: int,
) -> None:
    total = WRITERS * wins_each
    async with SQLiteEventStore(path) as store:
        stored = await store.get_events(stream, CART)
    assert stored.version == total
    won_versions = sorted(version for wins, _ in outcomes for version, _ in wins)
    assert won_versions == list(range(1, total + 1))  # exactly one winner per version
    won_ids = [event_id for wins, _ in outcomes for _, event_id in wins]
    assert sorted(won_ids) == sorted(str(e.event_id) for e in stored.events)  # none lost or doubled
    for wins, conflicts in outcomes:
        assert len(wins) == wins_each
        for expected, actual in conflicts:
            assert expected < actual <= total  # the loser saw a newer, real version


async def test_writers_on_separate_connections_race_on_one_stream(db_path: str) -> None:
    stream = uuid4()
    outcomes = await asyncio.gather(
        *(race_for_versions(db_path, stream, writer, 3, inline=False) for writer in range(WRITERS))
    )
    assert sum(len(conflicts) for _, conflicts in outcomes) > 0  # they did collide
    await _check_race(db_path, stream, list(outcomes), 3)


@pytest.mark.slow
async def test_writer_processes_race_on_one_stream(db_path: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    stream = uuid4()
    children = [
        ctx.Process(
            target=race_process, args=(db_path, str(stream), writer, 2, ready, start, results)
        )
        for writer in range(WRITERS)
    ]
    for child in children:
        child.start()
    try:
        for _ in children:
            await asyncio.to_thread(ready.get, True, 120)
        start.set()  # all imported and waiting: release them together
        outcomes = [await asyncio.to_thread(results.get, True, 120) for _ in children]
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    assert all(child.exitcode == 0 for child in children)
    await _check_race(db_path, stream, [outcome for _, outcome in outcomes], 2)


async def test_any_version_writers_wait_for_the_lock_instead_of_failing(db_path: str) -> None:
    stream = uuid4()
    per_writer = 10

    async def writer(number: int) -> list[UUID]:
        ids = []
        async with SQLiteEventStore(db_path) as store:
            for i in range(per_writer):
                events = [item(stream, f"{number}-{i}-{j}") for j in range(3)]
                await store.append_events(stream, CART, events, ExpectedVersion.ANY)
                ids += [e.event_id for e in events]
        return ids

    written = await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    async with SQLiteEventStore(db_path) as store:
        stored = [s async for s in store.read_stream(f"{stream}:{CART}")]
    assert [s.stream_position for s in stored] == list(range(1, WRITERS * per_writer * 3 + 1))
    assert sorted(s.event_id for s in stored) == sorted(i for ids in written for i in ids)
    for ids in written:  # each append's events are contiguous: appends never interleave
        found = {s.event_id: s.stream_position for s in stored}
        for start in range(0, len(ids), 3):
            batch = [found[i] for i in ids[start : start + 3]]
            assert batch == list(range(batch[0], batch[0] + 3))


def _wal_size(db_path: str) -> int:
    wal = Path(db_path + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.slow
async def test_writer_killed_mid_batch_leaves_all_or_nothing(db_path: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    stream = uuid4()
    count = 200_000
    child = ctx.Process(target=big_batch_process, args=(db_path, str(stream), count, ready))
    child.start()
    try:
        assert await asyncio.to_thread(ready.get, True, 120) == "appending"
        base = _wal_size(db_path)
        deadline = time.monotonic() + 120
        # The open transaction spills pages into the WAL as it inserts: once it has grown by
        # 8 MB the insert is under way but far from committed.
        while child.is_alive() and time.monotonic() < deadline:
            if _wal_size(db_path) > base + 8_000_000:
                break
            await asyncio.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        child.join(30)
    assert child.exitcode == -signal.SIGKILL, "the writer finished before it could be killed"
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    async with SQLiteEventStore(db_path) as store:
        version = await store.get_stream_version(stream, CART)
        assert version in (0, count)
        assert await store.get_global_position() == version
        result = await store.append_events(stream, CART, [item(stream)], version)
        assert result.new_version == version + 1
