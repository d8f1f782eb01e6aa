"""PostgreSQLEventStore under real contention: tasks and processes racing, killed writers."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from typing import Any
from uuid import UUID, uuid4

import pytest
from _pg_support import (
    added,
    batch_worker,
    race_worker,
    raw_connection,
    store,
)

from eventsource.exceptions import OptimisticLockError
from eventsource.stores.interface import ExpectedVersion
from eventsource.stores.postgresql import PostgreSQLEventStore

pytestmark = pytest.mark.postgresql
__all__ = ["store"]


async def _stream_facts(pg_url: str, pg_schema: str, stream: UUID) -> tuple[list[int], int]:
    conn = await raw_connection(pg_url, pg_schema)
    try:
        versions = [r[0] for r in await conn.fetch(
            "SELECT version FROM events WHERE aggregate_id = $1 ORDER BY version", stream)]
        distinct_ids = await conn.fetchval(
            "SELECT count(DISTINCT event_id) FROM events WHERE aggregate_id = $1", stream)
    finally:
        await conn.close()
    return versions, distinct_ids


def _check_race(wins: list[int], losses: list[tuple[int, int]], versions: list[int],
                distinct_ids: int) -> None:
    assert versions == list(range(1, len(versions) + 1))  # no gap, no duplicate version
    assert distinct_ids == len(versions)
    assert sorted(wins) == versions  # exactly one winner per version
    for expected, actual in losses:  # every loser saw the true, later version
        assert expected < actual <= len(versions)


async def test_sixteen_tasks_race_on_one_stream(
    pg_session_factory: Any, pg_url: str, pg_schema: str, store: PostgreSQLEventStore
) -> None:
    stream = uuid4()
    start = asyncio.Event()
    wins: list[int] = []
    losses: list[tuple[int, int]] = []

    async def writer() -> None:
        await start.wait()
        done = 0
        while done < 5:
            version = await store.get_stream_version(stream, "PgCart")
            try:
                result = await store.append_events(stream, "PgCart", [added(stream, 0)], version)
            except OptimisticLockError as exc:
                losses.append((exc.expected_version, exc.actual_version))
            else:
                wins.append(result.new_version)
                done += 1

    tasks = [asyncio.create_task(writer()) for _ in range(16)]
    start.set()
    await asyncio.gather(*tasks)
    versions, distinct_ids = await _stream_facts(pg_url, pg_schema, stream)
    assert len(versions) == 80
    _check_race(wins, losses, versions, distinct_ids)
    assert losses  # the race was real


@pytest.mark.slow
async def test_sixteen_processes_race_on_one_stream(
    pg_url: str, pg_schema: str, store: PostgreSQLEventStore
) -> None:
    await store.get_global_position()  # the table exists before the children start
    stream = uuid4()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(16), context.Queue()
    children = [
        context.Process(target=race_worker, args=(pg_url, pg_schema, stream, 3, barrier, results))
        for _ in range(16)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    wins = [v for won, _ in outcomes for v in won]
    losses = [pair for _, lost in outcomes for pair in lost]
    versions, distinct_ids = await _stream_facts(pg_url, pg_schema, stream)
    assert len(versions) == 48
    _check_race(wins, losses, versions, distinct_ids)


async def test_any_version_under_contention_never_fails(
    store: PostgreSQLEventStore, pg_url: str, pg_schema: str
) -> None:
    stream = uuid4()

    async def writer() -> None:
        for _ in range(10):
            await store.append_events(stream, "PgCart", [added(stream, 0), added(stream, 1)],
                                      ExpectedVersion.ANY)

    await asyncio.gather(*(writer() for _ in range(12)))
    versions, distinct_ids = await _stream_facts(pg_url, pg_schema, stream)
    assert versions == list(range(1, 241))
    assert distinct_ids == 240


async def test_concurrent_duplicate_event_ids_do_not_surface_database_errors(
    store: PostgreSQLEventStore, pg_url: str, pg_schema: str
) -> None:
    streams = [uuid4() for _ in range(8)]
    shared = [added(streams[0], n) for n in range(5)]

    async def writer(stream: UUID) -> None:  # the same event ids, raced into 8 streams
        copies = [e.model_copy(update={"aggregate_id": stream}) for e in shared]
        await store.append_events(stream, "PgCart", copies, ExpectedVersion.ANY)

    await asyncio.gather(*(writer(s) for s in streams))
    conn = await raw_connection(pg_url, pg_schema)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    assert stored == 5  # each event id stored once, by whichever writer won


@pytest.mark.slow
async def test_killed_writer_leaves_all_or_none_of_its_batch(
    pg_url: str, pg_schema: str, store: PostgreSQLEventStore
) -> None:
    await store.get_global_position()
    context = multiprocessing.get_context("spawn")
    outcomes = []
    for delay in (0.0, 0.05, 0.15, 0.4):
        stream = uuid4()
        started = context.Event()
        child = context.Process(target=batch_worker, args=(pg_url, pg_schema, stream, 20000,
                                                           started))
        child.start()
        assert started.wait(timeout=120)
        await asyncio.sleep(delay)
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(timeout=30)
        # the server finishes or rolls back the orphaned statement on its own
        deadline = time.monotonic() + 30
        while not await _idle(pg_url, pg_schema) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        versions, _ = await _stream_facts(pg_url, pg_schema, stream)
        assert versions in ([], list(range(1, 20001))), len(versions)
        outcomes.append(len(versions))
    assert len(outcomes) == 4


async def _idle(pg_url: str, pg_schema: str) -> bool:
    conn = await raw_connection(pg_url, pg_schema)
    try:
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state <> 'idle' AND pid <> pg_backend_pid() AND query LIKE 'WITH cur AS%'")
    finally:
        await conn.close()
    return int(busy) == 0
