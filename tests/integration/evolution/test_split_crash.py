"""Issue 15, acceptance 3 (subscriber half): a process whose DatabaseProjection is in the
middle of a split event's parts is killed (SIGKILL); restarted from its checkpoint, it applies
every part of every event exactly once: a split is one unit, committed with the checkpoint at
its stored row's position. A SQLite file and PostgreSQL, in subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import uuid4

import pytest
from evo_support import OldRow, evolution, fresh_schema, postgresql_at, sqlite_backend, v1_payload
from split_crash_child import READ_MODEL, PartsApplied, open_backend
from sqlalchemy import text

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


@asynccontextmanager
async def _location(backend: str, tmp_path: Path, request: pytest.FixtureRequest
                    ) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield str(tmp_path / "events.db")
        return
    url = request.getfixturevalue("pg_url")
    async with fresh_schema(url) as schema:
        yield f"{url} {schema}"


async def _wait(child: asyncio.subprocess.Process, done: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(60):
        while child.returncode is None and not await done():  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.01)
    assert child.returncode is None, "the child exited on its own"
    child.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(child.wait(), timeout=30) == -signal.SIGKILL


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
async def test_killed_mid_split_resumes_without_losing_or_repeating_a_part(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    registry, _ = evolution()
    gate = tmp_path / "gate"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(CHILD.parent)])}
    async with _location(backend, tmp_path, request) as location, open_backend(
        backend, location, registry
    ) as (store, sessions, checkpoints):
        async with sessions() as session, session.begin():
            await session.execute(text(READ_MODEL))
        rows = _rows()
        await _insert(backend, location, rows)
        expected = [str(s.event_id) async for s in store.read_all()]
        assert len(expected) == len(rows) + 10  # ten edits, two parts each

        async def applied() -> dict[str, int]:
            async with sessions() as session:
                found = await session.execute(text("SELECT event_id, applications FROM rm_parts"))
                return {str(k): int(v) for k, v in found.all()}

        async def stuck() -> bool:
            return await asyncio.to_thread(Path(f"{gate}.stuck").exists)

        async def complete() -> bool:
            position = await checkpoints.get_position(PartsApplied.__name__)
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


async def _insert(backend: str, location: str, rows: list[OldRow]) -> None:
    """The rows through the evolution tests' raw-SQL insert of the same backend."""

    registry, _ = evolution()
    if backend == "sqlite":
        async with sqlite_backend(location, registry) as found:
            await found.insert(rows)
    else:
        url, schema = location.split()
        async with postgresql_at(url, schema, registry) as found:
            await found.insert(rows)
