"""Issue 4, acceptance 2: a DatabaseProjection killed (SIGKILL) mid-stream and restarted from
its checkpoint applies every event exactly once, because its read-model writes and its
checkpoint commit in one transaction. Real processes, real databases."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from projection_crash_child import READ_MODEL, CrashCounter, CrashTick, open_backend, register
from sqlalchemy import text

from eventsource.stores.interface import EventStore

CHILD = Path(__file__).with_name("projection_crash_child.py")
SRC = Path(__file__).resolve().parents[3] / "src"

pytestmark = pytest.mark.slow


async def _fill(store: EventStore, total: int) -> list[str]:
    """Append `total` events in batches of 50 on a few aggregates; their ids in store order."""
    ids: list[str] = []
    clocks = [uuid4() for _ in range(4)]
    versions = dict.fromkeys(clocks, 0)
    for start in range(0, total, 50):
        clock = clocks[(start // 50) % len(clocks)]
        events = [CrashTick(aggregate_id=clock, n=n) for n in range(start, min(total, start + 50))]
        await store.append_events(clock, "CrashClock", events, expected_version=versions[clock])
        versions[clock] += len(events)
        ids.extend(str(event.event_id) for event in events)
    return ids


async def _crash_and_finish(
    backend: str, location: str, page: int, total: int, applied: Callable[[], Awaitable[int]]
) -> int:
    """Kill the child at three points of the stream, then let it finish; how many kills hit."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(CHILD.parent)])}
    kills = 0
    for fraction in (0.2, 0.45, 0.7, None):
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), backend, location, str(page), env=env
        )
        if fraction is not None:
            # The child is another process: its progress is only visible in the database.
            while child.returncode is None and await applied() < total * fraction:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            await asyncio.sleep(random.uniform(0, 0.02))  # land anywhere in a transaction
            if child.returncode is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
        code = await asyncio.wait_for(child.wait(), timeout=120)
        assert code in (0, -signal.SIGKILL)
    assert code == 0
    return kills


async def _check_exactly_once(backend: str, location: str, page: int, total: int) -> None:
    async with open_backend(backend, location) as (store, sessions, checkpoints):
        ids = await _fill(store, total)
        async with sessions() as session, session.begin():
            await session.execute(text(READ_MODEL))

        async def applied() -> int:
            async with sessions() as session:
                query = text("SELECT count(*) FROM rm_applied")
                return int((await session.execute(query)).scalar_one())

        kills = await _crash_and_finish(backend, location, page, total, applied)
        assert kills >= 2
        async with sessions() as session:
            rows = (await session.execute(text("SELECT * FROM rm_applied"))).all()
        counts = dict(rows)
        assert sorted(counts) == sorted(ids)  # nothing missed
        assert set(counts.values()) == {1}  # nothing applied twice
        data = await checkpoints.get_checkpoint_data(projection_name=CrashCounter.__name__)
        assert data is not None
        assert str(data.last_event_id) == ids[-1]
        assert data.events_processed == total  # checkpoint writes committed with the rows


@pytest.mark.postgresql
@pytest.mark.parametrize(("page", "total"), [(1, 1200), (100, 6000)])
async def test_postgresql_projection_survives_sigkill_exactly_once(
    pg_url: str, pg_schema: str, page: int, total: int
) -> None:
    register()
    await _check_exactly_once("postgresql", f"{pg_url} {pg_schema}", page, total)


@pytest.mark.parametrize(("page", "total"), [(1, 800), (100, 4000)])
async def test_sqlite_projection_survives_sigkill_exactly_once(
    tmp_path: Path, page: int, total: int
) -> None:
    register()
    await _check_exactly_once("sqlite", str(tmp_path / "events.db"), page, total)
