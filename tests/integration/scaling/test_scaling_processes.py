"""Partitioned subscriptions across worker PROCESSES (issue 17, acceptance 1 to 3).

Each worker is `scale_child.py`, a `PartitionedWorker` whose transactional handler writes one
`scale_audit` row per event (UNIQUE event_id) with the position its stream was at before, so
the checks see duplicates, gaps and reordering alike.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from scale_child import open_store
from scale_cluster import Cluster, Load, check_exact, wait_audited

pytestmark = pytest.mark.slow
OPTIONS = ["--partitions", "16", "--ttl", "2", "--heartbeat", "0.5"]


async def _owners(engine: AsyncEngine) -> dict[int, str | None]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT part, owner FROM scaling_partitions WHERE subscription = 'audit'"
        ))).all()
    return {int(p): o for p, o in rows}


async def _kill_one_at_30_percent(
    backend: str, location: str, workers: int, events: int, streams: int
) -> None:
    cluster = Cluster(backend, location, OPTIONS)
    await cluster.prepare()
    try:
        async with open_store(backend, location) as (store, engine):
            for i in range(workers):
                await cluster.spawn(f"w{i}")
            load = Load(store, events, streams)

            def kill_at_30(appended: int) -> None:
                if appended == events * 3 // 10:
                    cluster.signal("w0", signal.SIGKILL)

            await load.run(kill_at_30)
            assert cluster.procs["w0"].returncode is not None or \
                await cluster.procs["w0"].wait() == -signal.SIGKILL
            await wait_audited(engine, len(load.appended), 180)
            await asyncio.sleep(1.0)  # anything extra would show now
            await check_exact(engine, load.appended)
    finally:
        await cluster.stop_all()


@pytest.mark.postgresql
async def test_three_processes_sixteen_partitions_one_sigkilled_postgresql(
    pg_url: str, pg_schema: str
) -> None:
    await _kill_one_at_30_percent("postgresql", f"{pg_url} {pg_schema}", 3, 6000, 200)


async def test_two_processes_one_sqlite_file_one_sigkilled(tmp_path: Path) -> None:
    await _kill_one_at_30_percent("sqlite", str(tmp_path / "events.db"), 2, 3000, 100)
