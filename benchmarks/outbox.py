"""Benchmark the transactional outbox: what the outbox costs an append, and relay throughput.

    .venv/bin/python benchmarks/outbox.py --backend sqlite|postgres [--pg-url URL] [--quick]
        [--workloads O1,O2,R1,R2] [--reps N] [--json]

O1  single appends (one event per append_events, exact expected version, round-robin over
    the streams), outbox off and on, the two stores taking turns every 50 appends: appends/s.
O2  100-event appends, outbox off and on, taking turns every 5 appends: events/s each.
R1  an OutboxRelay draining the outbox into an InMemoryEventBus with no handler (read a batch,
    rebuild the events, publish, mark published in one statement): events/s, batch 100 and 500.
R2  the same into a Redis stream (RedisEventBus at $EVENTSOURCE_BENCH_REDIS_URL or
    redis://127.0.0.1:6379/0; skipped if unreachable), batch 500: events/s.

Stores are opened as by run.py (fresh file or schema; PostgreSQL at --pg-url, default
$EVENTSOURCE_BENCH_PG_URL or database test on 127.0.0.1); events are run.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from eventsource import InMemoryEventBus, OutboxRelay  # noqa: E402
from eventsource._sql.postgresql import asyncpg_url  # noqa: E402
from run import PG_URL, make_event  # noqa: E402

REDIS_URL = os.environ.get("EVENTSOURCE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.asynccontextmanager
async def outbox_store(
    backend: str, outbox: bool, pg_url: str = PG_URL
) -> AsyncIterator[tuple[Any, Any]]:
    """(store, outbox repository) on a fresh file or schema."""
    if backend == "sqlite":
        from eventsource.repositories.sqlite import SQLiteOutboxRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        directory = tempfile.mkdtemp(prefix="eventsource-bench-")
        try:
            store = SQLiteEventStore(os.path.join(directory, "events.db"), outbox_enabled=outbox)
            async with store:
                await store.initialize()
                yield store, SQLiteOutboxRepository(store, enable_tracing=False)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository
    from eventsource.stores.postgresql import PostgreSQLEventStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_async_engine(
            pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=10,
            connect_args={"server_settings": {"search_path": schema}},
        )
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        store = PostgreSQLEventStore(sessions, outbox_enabled=outbox)
        await store.initialize()
        try:
            yield store, PostgreSQLOutboxRepository(engine, enable_tracing=False)
        finally:
            await store.close()
            await engine.dispose()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def appends(
    store: Any, streams: int, per_stream: int, batch: int, ids: list[uuid.UUID] | None = None,
    start: int = 0,
) -> float:
    """Seconds to append `per_stream` events to each of `streams` (or of `ids`, which are at
    version `start`), `batch` per call."""
    ids = ids or [uuid.uuid4() for _ in range(streams)]
    plan = [
        (stream, [make_event(stream, v + k + 1, v + k) for k in range(batch)], v)
        for v in range(start, start + per_stream, batch)
        for stream in ids
    ]
    started = time.perf_counter()
    for stream, events, expected in plan:
        await store.append_events(stream, "BenchCart", events, expected)
    return time.perf_counter() - started


async def o_workload(
    backend: str, pg_url: str, streams: int, per_stream: int, batch: int
) -> dict[str, float]:
    """Both stores open at once, taking turns every 5,000 events or so (50 single appends, 5
    of 100 events), so that the machine's changing load weighs on both alike."""
    async with outbox_store(backend, False, pg_url) as (off, _), outbox_store(
        backend, True, pg_url
    ) as (on, _):
        stores = {"off": off, "on": on}
        ids = {side: [uuid.uuid4() for _ in range(streams)] for side in stores}
        seconds = dict.fromkeys(stores, 0.0)
        for store in stores.values():
            await appends(store, 10, batch, batch)  # warm-up on other streams
        block = 50 if batch == 1 else 5
        turns = [
            (version, start)
            for version in range(0, per_stream, batch)
            for start in range(0, streams, block)
        ]
        for turn, (version, start) in enumerate(turns):
            for side in ("off", "on") if turn % 2 == 0 else ("on", "off"):
                chunk = ids[side][start : start + block]
                seconds[side] += await appends(stores[side], 0, batch, batch, chunk, version)
    return {side: streams * per_stream / spent for side, spent in seconds.items()}


async def relay_workload(backend: str, pg_url: str, total: int, batch: int, bus: Any) -> float:
    async with outbox_store(backend, True, pg_url) as (store, outbox):
        await appends(store, total // 100, 100, 100)
        relay = OutboxRelay(outbox, bus, batch_size=batch, leader_lock=False)
        started = time.perf_counter()
        while (await relay.run_once()).published:
            pass
        seconds = time.perf_counter() - started
        stats = await outbox.get_stats()
        assert stats.published_count == total, stats
    return total / seconds


async def redis_bus() -> Any:
    try:
        from eventsource.bus.redis import RedisEventBus, RedisEventBusConfig

        bus = RedisEventBus(
            RedisEventBusConfig(redis_url=REDIS_URL, stream_prefix=f"bench-{uuid.uuid4().hex[:8]}")
        )
        await bus.connect()
    except Exception as exc:
        print(f"R2 skipped: Redis unreachable at {REDIS_URL} ({exc})", file=sys.stderr)
        return None
    return bus


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    reps = args.reps or (1 if quick else 3)
    single = (100, 5) if quick else (500, 6)  # streams, events per stream
    backend, pg_url = args.backend, args.pg_url
    chosen = set((args.workloads or "O1,O2,R1,R2").split(","))
    report: dict[str, Any] = {"backend": backend, "reps": reps}
    sizes = {"O1": (*single, 1), "O2": (10 if quick else 20, 500, 100)}
    for name, unit in (("O1", "appends/s"), ("O2", "events/s")):
        if name in chosen:
            runs = [await o_workload(backend, pg_url, *sizes[name]) for _ in range(reps)]
            for side in ("off", "on"):
                report[f"{name} {unit} outbox {side}"] = statistics.median(r[side] for r in runs)
            report[f"{name} on/off"] = report[f"{name} {unit} outbox on"] / report[
                f"{name} {unit} outbox off"
            ]
    total = 2_000 if quick else 20_000
    for batch in (100, 500) if "R1" in chosen else ():
        rates = [
            await relay_workload(
                backend, pg_url, total, batch, InMemoryEventBus(enable_tracing=False)
            )
            for _ in range(reps)
        ]
        report[f"R1 events/s batch {batch}"] = statistics.median(rates)
    bus = await redis_bus() if "R2" in chosen else None
    if bus is not None:
        try:
            rates = [
                await relay_workload(backend, pg_url, total // 2, 500, bus) for _ in range(reps)
            ]
            report["R2 events/s redis batch 500"] = statistics.median(rates)
        finally:
            import redis.asyncio as aioredis

            cleaner = aioredis.Redis.from_url(REDIS_URL)
            await cleaner.delete(bus.config.stream_name)
            await cleaner.aclose()
            await bus.shutdown(timeout=10)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=PG_URL,
        type=asyncpg_url,
        help="PostgreSQL URL (default $EVENTSOURCE_BENCH_PG_URL or database test)",
    )
    parser.add_argument("--workloads", help="comma-separated subset of O1,O2,R1,R2 (default all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one rep: a smoke run")
    parser.add_argument("--reps", type=int, help="repetitions (median reported; default 3)")
    parser.add_argument("--json", action="store_true")
    report = asyncio.run(run(parser.parse_args()))
    if "--json" in sys.argv:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        shown = value
        if isinstance(value, float):
            shown = f"{value:>12.2f}" if key.endswith("on/off") else f"{value:>12,.0f}"
        print(f"{key:36} {shown}")


if __name__ == "__main__":
    main()
