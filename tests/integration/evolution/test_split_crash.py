"""Issue 15, acceptance 3 (subscriber half): a process whose DatabaseProjection is in the
middle of a split event's parts is killed (SIGKILL); restarted from its checkpoint, it applies
every part of every event exactly once: a split is one unit, committed with the checkpoint at
its stored row's position. A SQLite file and PostgreSQL, in subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from uuid import uuid4

import pytest
from evo_support import (
    PARTS_READ_MODEL,
    Backend,
    OldRow,
    evolution,
    postgresql_at,
    sqlite_backend,
    v1_payload,
)
from sqlalchemy import text

from eventsource.repositories.checkpoint import CheckpointRepository

CHILD = Path(__file__).with_name("split_crash_child.py")
SRC = Path(__file__).resolve().parents[3] / "src"


def _rows() -> list[OldRow]:
    """40 customers: a sign-up each, and for every fourth an edit (split in two parts); the
    edit of customer 21 moves it to "GATE", where the first run gets stuck."""
    rows = []
    for n in range(40):
        customer = uuid4()
        event_id, payload = v1_payload(customer, 1, name=f"c{n}")
        rows.append(OldRow(customer, 1, "CustomerRegistered", event_id, payload))
        if n % 4 == 1:
            city = "GATE" if n == 21 else f"city {n}"
            event_id, payload = v1_payload(customer, 2, "CustomerEdited", name=f"C{n}", city=city)
            rows.append(OldRow(customer, 2, "CustomerEdited", event_id, payload))
    return rows


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend, location) as the child takes them: a SQLite file, or "url schema"."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "events.db")
    url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
    return "postgresql", f"{url} {schema}"


async def _wait(child: asyncio.subprocess.Process, done: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(60):
        while child.returncode is None and not await done():  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.01)
    assert child.returncode is None, "the child exited on its own"
    child.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(child.wait(), timeout=30) == -signal.SIGKILL


async def test_killed_mid_split_resumes_without_losing_or_repeating_a_part(
    place: tuple[str, str], tmp_path: Path
) -> None:
    backend, location = place
    gate = tmp_path / "gate"
    paths = [str(SRC), str(CHILD.parent), str(CHILD.parent.parent / "subscriptions")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    rows = _rows()
    async with _opened(backend, location) as opened:
        store, sessions = opened.store, opened.sessions
        checkpoints = _checkpoints(opened)
        async with sessions() as session, session.begin():
            await session.execute(text(PARTS_READ_MODEL))
        await opened.insert(rows)
        expected = [str(s.event_id) async for s in store.read_all()]
        assert len(expected) == len(rows) + 10  # ten edits, two parts each

        async def applied() -> dict[str, int]:
            async with sessions() as session:
                found = await session.execute(text("SELECT event_id, applications FROM rm_parts"))
                return {str(k): int(v) for k, v in found.all()}

        async def stuck() -> bool:
            return await asyncio.to_thread(Path(f"{gate}.stuck").exists)

        async def complete() -> bool:
            position = await checkpoints.get_position("PartsApplied")
            return position == await store.get_global_position()

        first = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), backend, location, str(gate), env=env
        )
        await _wait(first, stuck)  # killed inside the GATE split, after its first part
        partial = await applied()
        assert 0 < len(partial) < len(expected)
        gate.touch()
        second = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), backend, location, str(gate), env=env
        )
        await _wait(second, complete)
        counts = await applied()
        assert sorted(counts) == sorted(expected)  # no part lost
        assert set(counts.values()) == {1}  # none repeated


def _opened(backend: str, location: str) -> AbstractAsyncContextManager[Backend]:
    """The evolution tests' backend on the child's database (its own registry)."""
    registry, _ = evolution()
    if backend == "sqlite":
        return sqlite_backend(location, registry)
    url, schema = location.split()
    return postgresql_at(url, schema, registry)


def _checkpoints(opened: Backend) -> CheckpointRepository:
    if opened.name == "sqlite":
        from eventsource.repositories.sqlite import SQLiteCheckpointRepository

        return SQLiteCheckpointRepository(opened.store)  # type: ignore[arg-type]
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository

    return PostgreSQLCheckpointRepository(opened.sessions)
