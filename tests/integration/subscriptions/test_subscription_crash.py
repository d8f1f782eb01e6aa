"""Issue 4, acceptance 2, through the SubscriptionManager: a process running a subscription is
killed (SIGKILL) mid-stream several times while writers keep appending, and restarted from its
checkpoint. A plain subscriber gets every event at least once; a DatabaseProjection, whose pages
commit with the subscription checkpoint, applies every event exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import text
from subscription_crash_child import (
    READ_MODEL,
    AppliedRows,
    PoisonedRows,
    SubsCrashTick,
    open_backend,
    poisoned,
    register,
)

from eventsource.stores.interface import EventStore

CHILD = Path(__file__).with_name("subscription_crash_child.py")
SRC = Path(__file__).resolve().parents[3] / "src"
KILLS = 3
PREFILL = 2000
PROGRESS_PER_RUN = 700

pytestmark = pytest.mark.slow


class Writer:
    """Appends batches of 20 events to a few aggregates until stopped; keeps their ids."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.ids: list[str] = []
        self.clocks = {uuid4(): 0 for _ in range(4)}
        self.stopped = asyncio.Event()

    async def append(self, n: int) -> None:
        clock = random.choice(list(self.clocks))
        events = [SubsCrashTick(aggregate_id=clock, n=len(self.ids) + i) for i in range(n)]
        await self.store.append_events(clock, "SubsCrashClock", events, self.clocks[clock])
        self.clocks[clock] += n
        self.ids.extend(str(event.event_id) for event in events)

    async def run(self) -> None:
        while not self.stopped.is_set():
            await self.append(20)
            await asyncio.sleep(0.03)  # slower than the children read, so runs end


async def _kill_and_restart(
    backend: str, location: str, kind: str, path: str, writer: Writer,
    applied: Callable[[], Awaitable[int]], complete: Callable[[], Awaitable[int]],
) -> int:
    """Kill the child KILLS times after it made progress, then let it finish; kills landed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(CHILD.parent)])}
    writing = asyncio.create_task(writer.run())
    kills = 0
    try:
        for run in range(KILLS + 1):
            if run == KILLS:
                writer.stopped.set()
                await writing
            child = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD), backend, location, kind, path, env=env
            )
            progress = applied if run < KILLS else complete
            target = await applied() + PROGRESS_PER_RUN if run < KILLS else len(writer.ids)
            async with asyncio.timeout(60):
                # The child is another process: its progress is visible only in what it wrote.
                while child.returncode is None and await progress() < target:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            if run < KILLS:
                await asyncio.sleep(random.uniform(0, 0.02))  # land anywhere in a page
            assert child.returncode is None, "the child exited on its own"
            child.send_signal(signal.SIGKILL)
            kills += run < KILLS
            assert await asyncio.wait_for(child.wait(), timeout=30) == -signal.SIGKILL
    finally:
        writer.stopped.set()
        await asyncio.gather(writing, return_exceptions=True)
    return kills


async def _check_database_projection(
    backend: str, location: str, tmp_path: Path, kind: str = "database"
) -> None:
    async with open_backend(backend, location) as (store, sessions, checkpoints):
        writer = Writer(store)
        for _ in range(PREFILL // 20):
            await writer.append(20)
        async with sessions() as session, session.begin():
            await session.execute(text(READ_MODEL))

        async def applied() -> int:
            async with sessions() as session:
                query = text("SELECT count(*) FROM rm_sub_applied")
                return int((await session.execute(query)).scalar_one())

        async def complete() -> int:  # as many as there are events once all are handled
            name = (PoisonedRows if kind == "poison" else AppliedRows).__name__
            position = await checkpoints.get_position(name)
            return len(writer.ids) if position == await store.get_global_position() else 0

        kills = await _kill_and_restart(
            backend, location, kind, str(tmp_path / "unused"), writer, applied, complete
        )
        assert kills == KILLS
        async with sessions() as session:
            rows = (await session.execute(text("SELECT * FROM rm_sub_applied"))).all()
        counts = dict(rows)
        expected = [i for n, i in enumerate(writer.ids) if kind != "poison" or not poisoned(n)]
        assert len(expected) < len(writer.ids) or kind != "poison"
        assert sorted(counts) == sorted(expected)  # nothing missed
        assert set(counts.values()) == {1}  # nothing applied twice
        name = (PoisonedRows if kind == "poison" else AppliedRows).__name__
        data = await checkpoints.get_checkpoint_data(projection_name=name)
        assert data is not None
        assert data.cursor is not None
        assert data.global_position == await store.get_global_position()


async def _check_plain_subscriber(backend: str, location: str, tmp_path: Path) -> None:
    lines = tmp_path / "applied.txt"
    lines.touch()
    line_size = len(str(uuid4())) + 1
    async with open_backend(backend, location) as (store, _sessions, _checkpoints):
        writer = Writer(store)
        for _ in range(PREFILL // 20):
            await writer.append(20)

        async def applied() -> int:
            return lines.stat().st_size // line_size

        async def distinct() -> int:
            if await applied() < len(writer.ids):  # cheap test first
                return 0
            return len(set(lines.read_text().split()))

        kills = await _kill_and_restart(
            backend, location, "plain", str(lines), writer, applied, distinct
        )
        assert kills == KILLS
        counts = Counter(lines.read_text().split())
        assert set(counts) == set(writer.ids)  # every event applied at least once


@pytest.mark.postgresql
async def test_postgresql_database_projection_exactly_once_across_sigkills(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    register()
    await _check_database_projection("postgresql", f"{pg_url} {pg_schema}", tmp_path)


@pytest.mark.postgresql
async def test_postgresql_plain_subscriber_at_least_once_across_sigkills(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    register()
    await _check_plain_subscriber("postgresql", f"{pg_url} {pg_schema}", tmp_path)


async def test_sqlite_database_projection_exactly_once_across_sigkills(tmp_path: Path) -> None:
    register()
    await _check_database_projection("sqlite", str(tmp_path / "events.db"), tmp_path)


@pytest.mark.postgresql
async def test_postgresql_database_projection_with_failing_events_across_sigkills(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    """Pages with a failing event fall back to a transaction per event: still exactly once."""
    register()
    await _check_database_projection("postgresql", f"{pg_url} {pg_schema}", tmp_path, "poison")


async def test_sqlite_database_projection_with_failing_events_across_sigkills(
    tmp_path: Path,
) -> None:
    register()
    await _check_database_projection("sqlite", str(tmp_path / "events.db"), tmp_path, "poison")


async def test_sqlite_plain_subscriber_at_least_once_across_sigkills(tmp_path: Path) -> None:
    register()
    await _check_plain_subscriber("sqlite", str(tmp_path / "events.db"), tmp_path)
