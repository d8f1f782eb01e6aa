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
from scale_child import open_store
from scale_cluster import Cluster, Load, check_exact, wait_audited
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.slow
OPTIONS = ["--partitions", "16", "--ttl", "2", "--heartbeat", "0.5"]


async def _owners(engine: AsyncEngine) -> dict[int, str | None]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT part, owner FROM scaling_partitions WHERE subscription = 'audit'"
        ))).all()
    return {int(p): o for p, o in rows}


async def _kill_one_at_30_percent(
    backend: str, location: str, workers: int, events: int, streams: int, *extra: str
) -> None:
    cluster = Cluster(backend, location, [*OPTIONS, *extra])
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


@pytest.mark.postgresql
async def test_pages_split_into_concurrent_transactions_stay_exact_postgresql(
    pg_url: str, pg_schema: str
) -> None:
    await _kill_one_at_30_percent("postgresql", f"{pg_url} {pg_schema}", 3, 6000, 200,
                                  "--concurrency", "4")


async def test_two_processes_one_sqlite_file_one_sigkilled(tmp_path: Path) -> None:
    await _kill_one_at_30_percent("sqlite", str(tmp_path / "events.db"), 2, 3000, 100)


@pytest.mark.postgresql
async def test_a_stopped_worker_past_its_lease_commits_nothing_postgresql(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    """SIGSTOP a worker inside its transaction, let another take its partitions over,
    SIGCONT: its commit raises LeaseLost and rolls back; the page is the other's."""
    location = f"{pg_url} {pg_schema}"
    cluster = Cluster("postgresql", location, OPTIONS)
    await cluster.prepare()
    held = tmp_path / "held"
    try:
        async with open_store("postgresql", location) as (store, engine):
            load = Load(store, 2000, 50)
            await load.run()
            await cluster.spawn("a", "--hold-file", str(held), "--hold-after", "3")
            async with asyncio.timeout(60):
                while not held.exists():  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.02)
            cluster.signal("a", signal.SIGSTOP)
            await cluster.spawn("b")
            async with asyncio.timeout(60):  # a's leases ran out and b took every partition
                while set((await _owners(engine)).values()) != {"b"}:  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.1)
            cluster.signal("a", signal.SIGCONT)
            await wait_audited(engine, len(load.appended), 120)
            await check_exact(engine, load.appended)
            in_flight = held.read_text().split()
            async with engine.connect() as conn:
                writers = {w for (w,) in (await conn.execute(text(
                    "SELECT worker FROM scale_audit WHERE event_id IN "
                    f"({', '.join(repr(e) for e in in_flight)})"
                ))).all()}
            assert writers == {"b"}
    finally:
        await cluster.stop_all()
    assert "LEASE_LOST" in await cluster.stderr("a")


@pytest.mark.postgresql
async def test_workers_joining_and_leaving_rebalance_and_skip_nothing_postgresql(
    pg_url: str, pg_schema: str
) -> None:
    """1 worker, then 2 more: an even split (6/5/5); SIGTERM one: its partitions are taken
    over, and every event appended throughout is applied exactly once."""
    location = f"{pg_url} {pg_schema}"
    cluster = Cluster("postgresql", location, OPTIONS)
    await cluster.prepare()
    try:
        async with open_store("postgresql", location) as (store, engine):
            await cluster.spawn("w0")
            assert set((await _owners(engine)).values()) == {"w0"}
            load = Load(store, 3000, 100, rate=1000)
            writing = asyncio.ensure_future(load.run())
            await cluster.spawn("w1")
            await cluster.spawn("w2")
            async with asyncio.timeout(30):
                while sorted(_counts(await _owners(engine))) != [5, 5, 6]:  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.05)
            cluster.signal("w1", signal.SIGTERM)
            assert await cluster.procs["w1"].wait() == 0
            async with asyncio.timeout(30):
                while sorted(_counts(await _owners(engine))) != [8, 8]:  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.05)
            assert set((await _owners(engine)).values()) == {"w0", "w2"}
            await writing
            await wait_audited(engine, len(load.appended), 120)
            await check_exact(engine, load.appended)
    finally:
        await cluster.stop_all()


def _counts(owners: dict[int, str | None]) -> list[int]:
    counts: dict[str | None, int] = {}
    for owner in owners.values():
        counts[owner] = counts.get(owner, 0) + 1
    return list(counts.values())
