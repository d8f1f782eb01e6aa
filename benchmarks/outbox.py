"""Benchmark the transactional outbox: what the outbox costs an append, and relay throughput.

    .venv/bin/python benchmarks/outbox.py --backend sqlite|postgres [--quick] [--json]

O1  single appends (one event per append_events, exact expected version, round-robin over
    the streams), outbox off then on: appends/s each.
O2  100-event appends, outbox off then on: events/s each.
R1  an OutboxRelay draining the outbox into an InMemoryEventBus with no handler (read a batch,
    rebuild the events, publish, mark published in one statement): events/s, batch 100 and 500.
R2  the same into a Redis stream (RedisEventBus at $EVENTSOURCE_BENCH_REDIS_URL or
    redis://127.0.0.1:6379/0; skipped if unreachable), batch 500: events/s.

Stores are opened as by run.py (fresh file or schema); events are run.py's.
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
from run import PG_URL, make_event  # noqa: E402

REDIS_URL = os.environ.get("EVENTSOURCE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.asynccontextmanager
async def outbox_store(backend: str, outbox: bool) -> AsyncIterator[tuple[Any, Any]]:
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
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_async_engine(
            PG_URL.replace("postgresql://", "postgresql+asyncpg://", 1),
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


async def appends(store: Any, streams: int, per_stream: int, batch: int) -> float:
    """Seconds to append `per_stream` events to each of `streams`, `batch` per call."""
    ids = [uuid.uuid4() for _ in range(streams)]
    plan = [
        (stream, [make_event(stream, v + k + 1, v + k) for k in range(batch)], v)
        for v in range(0, per_stream, batch)
        for stream in ids
    ]
    started = time.perf_counter()
    for stream, events, expected in plan:
        await store.append_events(stream, "BenchCart", events, expected)
    return time.perf_counter() - started


async def o_workload(backend: str, streams: int, per_stream: int, batch: int) -> dict[str, float]:
    result = {}
    for outbox in (False, True):
        async with outbox_store(backend, outbox) as (store, _):
            await appends(store, 10, batch, batch)  # warm-up on other streams
            seconds = await appends(store, streams, per_stream, batch)
        result["on" if outbox else "off"] = streams * per_stream / seconds
    return result


async def relay_workload(backend: str, total: int, batch: int, bus: Any) -> float:
    async with outbox_store(backend, True) as (store, outbox):
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
    report: dict[str, Any] = {"backend": args.backend, "reps": reps}
    o1 = [await o_workload(args.backend, *single, 1) for _ in range(reps)]
    o2 = [await o_workload(args.backend, 10 if quick else 20, 500, 100) for _ in range(reps)]
    for name, runs in (("O1 appends/s", o1), ("O2 events/s", o2)):
        for side in ("off", "on"):
            report[f"{name} outbox {side}"] = statistics.median(r[side] for r in runs)
    total = 2_000 if quick else 20_000
    for batch in (100, 500):
        rates = [
            await relay_workload(args.backend, total, batch, InMemoryEventBus(enable_tracing=False))
            for _ in range(reps)
        ]
        report[f"R1 events/s batch {batch}"] = statistics.median(rates)
    bus = await redis_bus()
    if bus is not None:
        try:
            rates = [await relay_workload(args.backend, total // 2, 500, bus) for _ in range(reps)]
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
    parser.add_argument("--quick", action="store_true", help="small sizes, one rep: a smoke run")
    parser.add_argument("--reps", type=int, help="repetitions (median reported; default 3)")
    parser.add_argument("--json", action="store_true")
    report = asyncio.run(run(parser.parse_args()))
    if "--json" in sys.argv:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        print(f"{key:36} {value:>12,.0f}" if isinstance(value, float) else f"{key:36} {value}")


if __name__ == "__main__":
    main()
