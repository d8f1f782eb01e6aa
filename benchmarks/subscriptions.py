"""Benchmark the read side: subscription catch-up, a row-writing DatabaseProjection, live latency.

    .venv/bin/python benchmarks/subscriptions.py --backend sqlite|postgres [--quick] [--json]

S1  catch-up: a no-op subscriber catches up over 100,000 stored events through the
    SubscriptionManager (start from the beginning, batch 1,000), events/s.
S2  (postgres) a DatabaseProjection writing one row per event: pages of the store's commit-safe
    read handed to `handle_batch`, whose `_process_batch` writes the page with one executemany
    (the projection of benchmarks/database_projection.py), events/s end to end.
S3  (postgres) live latency: a separate process runs 8 writers appending single events as fast
    as they can; a LIVE subscription (poll_interval 5 s, so only LISTEN/NOTIFY wakes it quickly)
    records, per event, handler time minus the time taken just before `append_events`. p50/p99.

See benchmarks/README.md for the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# This checkout's src/ first (as run.py does), so whatever import comes first measures it.
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from eventsource.subscriptions import (  # noqa: E402
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)
from run import PG_URL, BenchItemAdded, es, make_event, open_store  # noqa: E402

TARGETS = {"S1": 50_000.0, "S2": 15_000.0, "S3_p99_ms": 250.0}


@es.register_event
class LatencyPing(es.DomainEvent):
    """Carries the writer's clock just before the append."""

    event_type: str = "BenchLatencyPing"
    aggregate_type: str = "BenchPing"
    sent_at: float


async def fill(store: Any, total: int, per_append: int = 500) -> None:
    """`total` events in streams of 1,000, appended `per_append` at a time."""
    i = 0
    while i < total:
        stream = uuid.uuid4()
        for version in range(0, min(1000, total - i), per_append):
            count = min(per_append, total - i)
            events = [make_event(stream, version + k + 1, i + k) for k in range(count)]
            await store.append_events(stream, BenchItemAdded.model_fields["aggregate_type"].default,
                                      events, version)
            i += count


class NoOp:
    def __init__(self) -> None:
        self.count = 0

    def subscribed_to(self) -> list[type[es.DomainEvent]]:
        return []

    async def handle(self, event: es.DomainEvent) -> None:
        self.count += 1


async def until(predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls plain counters
            await asyncio.sleep(0.002)


async def s1_catch_up(store: Any, total: int) -> float:
    manager = SubscriptionManager(store, None, es.InMemoryCheckpointRepository(
        enable_tracing=False), enable_tracing=False)
    handler = NoOp()
    await manager.subscribe(handler, SubscriptionConfig(start_from="beginning", batch_size=1000),
                            name="noop")
    started = time.perf_counter()
    async with manager:
        await until(lambda: handler.count >= total, 600)
        elapsed = time.perf_counter() - started
    return total / elapsed


async def s2_database_projection(store: Any, total: int) -> float:
    from sqlalchemy import text

    from database_projection import PAGE, BenchRow, RowPerEventPaged
    from eventsource.events.registry import default_registry
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository

    if default_registry.get_or_none("BenchRow") is None:
        default_registry.register(BenchRow)
    for start in range(0, total, 500):
        stream = uuid.uuid4()
        rows = [BenchRow(aggregate_id=stream, n=n) for n in range(start, min(start + 500, total))]
        await store.append_events(stream, "Bench", rows, 0)
    sessions = store.session_factory
    async with sessions() as session, session.begin():
        await session.execute(text("CREATE TABLE rm_rows (event_id UUID PRIMARY KEY, n INT)"))
    projection = RowPerEventPaged(sessions, PostgreSQLCheckpointRepository(sessions))
    await projection.reset()
    done = 0
    cursor = None
    started = time.perf_counter()
    while True:
        page = await store.read_committed(cursor, PAGE)
        if not page.events:
            break
        await projection.handle_batch([stored.event for stored in page.events])
        done += len(page.events)
        cursor = page.cursor
    elapsed = time.perf_counter() - started
    assert done == total, (done, total)
    return total / elapsed


def _writer_process(pg_url: str, schema: str, writers: int, each: int) -> None:
    asyncio.run(_writers(pg_url, schema, writers, each))


async def _writers(pg_url: str, schema: str, writers: int, each: int) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.stores.postgresql import PostgreSQLEventStore

    engine = create_async_engine(
        pg_url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=10,
        connect_args={"server_settings": {"search_path": schema}},
    )
    store = PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False)
    await store.initialize()

    async def one() -> None:
        stream = uuid.uuid4()
        for version in range(each):
            ping = LatencyPing(aggregate_id=stream, sent_at=time.time())
            await store.append_events(stream, "BenchPing", [ping], version)

    await asyncio.gather(*(one() for _ in range(writers)))
    await store.close()
    await engine.dispose()


async def s3_latency(store: Any, writers: int, each: int) -> dict[str, float]:
    latencies: list[float] = []

    class Clock:
        def subscribed_to(self) -> list[type[es.DomainEvent]]:
            return [LatencyPing]

        async def handle(self, event: es.DomainEvent) -> None:
            assert isinstance(event, LatencyPing)
            latencies.append(time.time() - event.sent_at)

    manager = SubscriptionManager(store, None, es.InMemoryCheckpointRepository(
        enable_tracing=False), enable_tracing=False)
    manager.poll_interval = 5.0
    subscription = await manager.subscribe(Clock(), SubscriptionConfig(
        start_from="end", batch_size=1000), name="latency")
    schema = str(await _schema_of(store))
    async with manager:
        await until(lambda: subscription.state is SubscriptionState.LIVE, 60)
        process = multiprocessing.get_context("spawn").Process(
            target=_writer_process, args=(PG_URL, schema, writers, each))
        process.start()
        await asyncio.get_running_loop().run_in_executor(None, process.join)
        await until(lambda: len(latencies) >= writers * each, 60)
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "events": float(len(ordered)),
    }


async def _schema_of(store: Any) -> Any:
    from sqlalchemy import text

    async with store.session_factory() as session:
        return (await session.execute(text("SELECT current_schema()"))).scalar()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    total = 20_000 if args.quick else 100_000
    report: dict[str, Any] = {"backend": args.backend, "events": total}
    async with open_store(args.backend, PG_URL) as store:
        await fill(store, total)
        report["S1"] = max([await s1_catch_up(store, total) for _ in range(args.reps)])
    if args.backend == "postgres":
        async with open_store("postgres", PG_URL) as store:
            report["S2"] = await s2_database_projection(store, total)
        async with open_store("postgres", PG_URL) as store:
            await store.initialize()
            report["S3"] = await s3_latency(store, 8, 50 if args.quick else 250)
    return report


def show(report: dict[str, Any]) -> None:
    def mark(ok: bool) -> str:
        return "ok" if ok else "BELOW"

    print(f"subscriptions on {report['backend']}, {report['events']:,} stored events")
    s1 = report["S1"]
    print(f"  S1 catch-up, no-op subscriber      {s1:>10,.0f} events/s   target >= "
          f"{TARGETS['S1']:,.0f}  {mark(s1 >= TARGETS['S1'])}")
    if "S2" in report:
        s2 = report["S2"]
        print(f"  S2 DatabaseProjection, row/event   {s2:>10,.0f} events/s   target >= "
              f"{TARGETS['S2']:,.0f}  {mark(s2 >= TARGETS['S2'])}")
    if "S3" in report:
        s3 = report["S3"]
        ok = s3["p99_ms"] <= TARGETS["S3_p99_ms"]
        print(f"  S3 live latency, 8 writers         p50 {s3['p50_ms']:.1f} ms  p99 "
              f"{s3['p99_ms']:.1f} ms  max {s3['max_ms']:.1f} ms ({s3['events']:,.0f} events)"
              f"   target p99 <= {TARGETS['S3_p99_ms']:.0f} ms  {'ok' if ok else 'ABOVE'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--quick", action="store_true", help="20,000 events, 8 x 50 pings")
    parser.add_argument("--reps", type=int, default=3, help="S1 repetitions (best is reported)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        show(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
