"""Scaling the read side out: partitioned subscriptions over worker processes (issue 17).

    .venv/bin/python benchmarks/scale_out.py [--events 6000] [--full 60000] [--io-ms 5]
    .venv/bin/python benchmarks/scale_out.py --only-takeover

PostgreSQL at $EVENTSOURCE_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test),
each part in a fresh schema, 16 partitions unless said, worker processes of
tests/integration/scaling/scale_child.py (transactional handler: one audit row per event, after
a simulated I/O of --io-ms per event), lease TTL 2 s, heartbeat 0.5 s.

1. throughput: --events over 1000 streams stored beforehand, drained by 1 worker, then by 3:
   events/s each
   while 20 % to 90 % of them were applied (target: 3 workers >= 2.5x one).
2. delivery lag: 8 writers appending 500 events/s over 2000 streams for 20 s, 3 workers,
   pages of 50, concurrency 1 and 4 (transactions per page): p50/p99/max of (committed in
   the read model - appended) (target p99 < 1 s).
3. takeover: 3 workers under load, one SIGKILLed: seconds until its partitions are all held by
   the others (target <= TTL + one heartbeat), then one SIGTERMed: seconds until the last
   holds all (target <= TTL), and rebalance: 1 worker, then 2 more, seconds
   until 6/5/5 (target <= 2 heartbeats from the last start).
4. acceptance run: --full events over 2000 streams by 8 writers, 3 workers, one SIGKILLed at
   30 %: read model exact, no duplicate, every stream contiguous (0 = skip).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests/integration/scaling")]

import asyncpg  # noqa: E402
from scale_child import open_store  # noqa: E402
from scale_cluster import Cluster, Load, audited, check_exact, wait_audited  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

URL = os.environ.get("EVENTSOURCE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TTL, BEAT = 2.0, 0.5


@asynccontextmanager
async def schema() -> AsyncIterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(URL)
    await conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{URL} {name}"
    finally:
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        await conn.close()


def cluster(location: str, io_ms: float, batch: int = 200, concurrency: int = 1) -> Cluster:
    return Cluster("postgresql", location, ["--partitions", "16", "--ttl", str(TTL),
                                            "--heartbeat", str(BEAT), "--io-ms", str(io_ms),
                                            "--batch", str(batch),
                                            "--concurrency", str(concurrency)])


async def owners(engine: AsyncEngine) -> dict[int, str | None]:
    async with engine.connect() as conn:
        return dict((await conn.execute(text(
            "SELECT part, owner FROM scaling_partitions WHERE subscription = 'audit'"))).all())


async def throughput(workers: int, events: int, io_ms: float) -> float:
    async with schema() as location:
        nodes = cluster(location, io_ms)
        await nodes.prepare()
        async with open_store("postgresql", location) as (store, engine):
            await Load(store, events, 1000).run()
            for i in range(workers):
                await nodes.spawn(f"w{i}", wait=False)
            marks: dict[float, float] = {}  # fraction of the events applied -> when
            try:
                async with asyncio.timeout(900):
                    while len(marks) < 2:
                        done = await audited(engine) / events
                        for fraction in (0.2, 0.9):
                            if done >= fraction:
                                marks.setdefault(fraction, time.monotonic())
                        await asyncio.sleep(0.05)
            finally:
                await nodes.stop_all()
            # Steady state: from 20 % to 90 % applied (process start-up and the first
            # rebalance are not what is measured).
            return 0.7 * events / (marks[0.9] - marks[0.2])


async def lag(io_ms: float, concurrency: int, seconds: float = 20,
              rate: float = 500) -> list[float]:
    async with schema() as location:
        nodes = cluster(location, io_ms, batch=50, concurrency=concurrency)
        await nodes.prepare()
        async with open_store("postgresql", location) as (store, engine):
            for i in range(3):
                await nodes.spawn(f"w{i}")
            await balanced(engine)  # sustained load on a settled cluster
            load = Load(store, int(seconds * rate), 2000, rate=rate)
            try:
                await load.run()
                await wait_audited(engine, len(load.appended), 120)
            finally:
                await nodes.stop_all()
            async with engine.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT event_id, delivered_at FROM scale_audit"))).all()
            return sorted(at - load.stamps[e] for e, at in rows)


async def takeover() -> tuple[float, float, float]:
    async with schema() as location:
        nodes = cluster(location, 0)
        await nodes.prepare()
        async with open_store("postgresql", location) as (store, engine):
            await nodes.spawn("w0")
            started = time.monotonic()
            await nodes.spawn("w1")
            await nodes.spawn("w2")
            last_start = time.monotonic()
            await balanced(engine)
            rebalanced = time.monotonic() - last_start
            del started
            writing = asyncio.ensure_future(Load(store, 4000, 200, rate=300).run())
            await asyncio.sleep(2)
            nodes.signal("w1", signal.SIGKILL)
            killed = time.monotonic()
            while "w1" in (await owners(engine)).values():  # noqa: ASYNC110 - polls another process's state
                await asyncio.sleep(0.01)
            taken = time.monotonic() - killed
            nodes.signal("w2", signal.SIGTERM)
            stopped = time.monotonic()
            while set((await owners(engine)).values()) != {"w0"}:  # noqa: ASYNC110 - polls
                await asyncio.sleep(0.01)
            handed = time.monotonic() - stopped
            await writing
            await nodes.stop_all()
            return rebalanced, taken, handed


async def balanced(engine: AsyncEngine) -> None:
    """Until the 16 partitions are split 6/5/5."""
    while sorted(_count(await owners(engine))) != [5, 5, 6]:  # noqa: ASYNC110 - polls another process's state
        await asyncio.sleep(0.01)


def _count(owned: dict[int, str | None]) -> list[int]:
    counts: dict[str | None, int] = {}
    for owner in owned.values():
        counts[owner] = counts.get(owner, 0) + 1
    return list(counts.values())


async def acceptance(events: int) -> str:
    async with schema() as location:
        nodes = cluster(location, 0)
        await nodes.prepare()
        async with open_store("postgresql", location) as (store, engine):
            for i in range(3):
                await nodes.spawn(f"w{i}")
            load = Load(store, events, 2000)

            def kill(n: int) -> None:
                if n == events * 3 // 10:
                    nodes.signal("w0", signal.SIGKILL)

            started = time.monotonic()
            try:
                await load.run(kill)
                appended = time.monotonic() - started
                await wait_audited(engine, len(load.appended), 600)
                await asyncio.sleep(1)
                await check_exact(engine, load.appended)
            finally:
                await nodes.stop_all()
            return (f"{len(load.appended)} events appended in {appended:.1f}s, all applied "
                    f"{time.monotonic() - started:.1f}s after the start; {await audited(engine)} "
                    "audit rows, exact, contiguous, no duplicate")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--full", type=int, default=60000)
    parser.add_argument("--io-ms", type=float, default=5.0)
    parser.add_argument("--only-takeover", action="store_true", help="part 3 alone")
    args = parser.parse_args()
    if args.only_takeover:
        args.events = args.full = 0
    one = await throughput(1, args.events, args.io_ms) if args.events else 0.0
    three = await throughput(3, args.events, args.io_ms) if args.events else 0.0
    if args.events:
        print(f"1. throughput, {args.io_ms:g} ms I/O per event: 1 worker {one:.0f} ev/s, "
              f"3 workers {three:.0f} ev/s = {three / one:.2f}x (target >= 2.5x)", flush=True)
    for io, concurrency in ((args.io_ms, 1), (args.io_ms, 4), (0.0, 1)) * bool(args.events):
        lags = await lag(io, concurrency)
        p50, p99 = statistics.quantiles(lags, n=100)[49], statistics.quantiles(lags, n=100)[98]
        print(f"2. delivery lag at 500 ev/s, 3 workers, concurrency {concurrency}, {io:g} ms "
              "I/O: p50 "
              f"{p50:.3f}s p99 {p99:.3f}s max {lags[-1]:.3f}s (target p99 < 1s)", flush=True)
    rebalanced, taken, handed = await takeover()
    print(f"3. rebalance 1 -> 3 workers: even {rebalanced:.2f}s after the last start "
          f"({rebalanced / BEAT:.1f} heartbeats; target <= 2); takeover after SIGKILL "
          f"{taken:.2f}s (target <= TTL + heartbeat = {TTL + BEAT:.1f}s); after SIGTERM "
          f"{handed:.2f}s (target <= TTL = {TTL:.1f}s)", flush=True)
    if args.full:
        print(f"4. acceptance: {await acceptance(args.full)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
