"""Benchmark snapshot loading: one aggregate of 10,000 events, loaded by replaying every event
and loaded from a snapshot at version 9,990 (reading the 10 events after it).

    .venv/bin/python benchmarks/snapshots.py --backend memory|sqlite|postgres [--reps N] [--json]

Event and snapshot store of the same backend, opened as `run.py` opens its stores (fresh file or
schema); the snapshot store shares the event store's SQLite file or SQLAlchemy engine. Prints the
median load time of each (and min-max over the repetitions) and the speed-up, target >= 20x.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

_HERE = Path(__file__).resolve().parent
# This checkout's src/ first (as run.py does), so whatever import comes first measures it.
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from run import AGGREGATE_TYPE, PG_URL, BenchItemAdded, es, make_event, open_store  # noqa: E402

EVENTS = 10_000
SNAPSHOT_AT = 9_990
TARGET_SPEEDUP = 20.0


class CartState(BaseModel):
    items: int = 0
    quantity: int = 0
    total: Decimal = Decimal(0)
    last_sku: str = ""
    skus_seen: int = 0


class BenchCart(es.DeclarativeAggregate[CartState]):
    """Folds `BenchItemAdded` into running totals (state of constant size)."""

    aggregate_type = AGGREGATE_TYPE

    def _get_initial_state(self) -> CartState:
        return CartState()

    @es.handles(BenchItemAdded)
    def _on_item(self, event: BenchItemAdded) -> None:
        state = self._state or self._get_initial_state()
        self._state = CartState(
            items=state.items + 1,
            quantity=state.quantity + event.quantity,
            total=state.total + event.amount * event.quantity,
            last_sku=event.sku,
            skus_seen=state.skus_seen + (event.sku != state.last_sku),
        )


@contextlib.asynccontextmanager
async def open_snapshot_store(backend: str, events: Any) -> AsyncIterator[Any]:
    """The snapshot store beside `events`: same file or same engine."""
    if backend == "memory":
        yield es.InMemorySnapshotStore()
    elif backend == "sqlite":
        from eventsource.snapshots import SQLiteSnapshotStore

        async with SQLiteSnapshotStore(events.database) as store:
            yield store
    else:
        from eventsource.snapshots import PostgreSQLSnapshotStore

        async with PostgreSQLSnapshotStore(events.session_factory) as store:
            yield store


async def fill(events: Any, aggregate_id: uuid.UUID, first: int, last: int) -> None:
    """Events `first`..`last` (versions) of the aggregate, 500 per append."""
    for start in range(first, last + 1, 500):
        stop = min(start + 500, last + 1)
        batch = [make_event(aggregate_id, v, v) for v in range(start, stop)]
        await events.append_events(aggregate_id, AGGREGATE_TYPE, batch, start - 1)


async def time_loads(repo: Any, aggregate_id: uuid.UUID, reps: int) -> list[float]:
    await repo.load(aggregate_id)  # warm-up: connections, prepared statements, caches
    # Collect once per series, not before each load: a collection just before a load of a few
    # milliseconds leaves it with cold caches and an idle database backend to wake up.
    gc.collect()
    timings = []
    for _ in range(reps):
        started = time.perf_counter()
        await repo.load(aggregate_id)
        timings.append(time.perf_counter() - started)
    return timings


async def run(backend: str, reps: int, pg_url: str) -> dict[str, Any]:
    async with open_store(backend, pg_url) as events, open_snapshot_store(backend, events) as snaps:
        aggregate_id = uuid.uuid4()
        plain = es.AggregateRepository(events, BenchCart, AGGREGATE_TYPE)
        snapshotting = es.AggregateRepository(
            events, BenchCart, AGGREGATE_TYPE, snapshot_store=snaps
        )
        await fill(events, aggregate_id, 1, SNAPSHOT_AT)
        snapshot = await snapshotting.create_snapshot(await plain.load(aggregate_id))
        await fill(events, aggregate_id, SNAPSHOT_AT + 1, EVENTS)
        full = await plain.load(aggregate_id)
        fast = await snapshotting.load(aggregate_id)
        tail = await events.get_events(aggregate_id, AGGREGATE_TYPE, from_version=snapshot.version)
        if (full.version, fast.version, full.state) != (EVENTS, EVENTS, fast.state):
            raise AssertionError("the snapshot load rebuilt a different aggregate")
        if len(tail.events) != EVENTS - SNAPSHOT_AT:
            raise AssertionError(f"the snapshot load reads {len(tail.events)} events")
        without = await time_loads(plain, aggregate_id, reps)
        with_snapshot = await time_loads(snapshotting, aggregate_id, reps)
    speedup = statistics.median(without) / statistics.median(with_snapshot)
    return {
        "backend": backend,
        "events": EVENTS,
        "snapshot_at": SNAPSHOT_AT,
        "reps": reps,
        "without_snapshot_ms": [t * 1000 for t in without],
        "with_snapshot_ms": [t * 1000 for t in with_snapshot],
        "speedup": speedup,
        "target_speedup": TARGET_SPEEDUP,
        "ok": speedup >= TARGET_SPEEDUP,
    }


def format_report(report: dict[str, Any]) -> str:
    def row(label: str, values: list[float]) -> str:
        return (
            f"{label:<34}{statistics.median(values):>10.2f} ms   "
            f"(min {min(values):.2f} - max {max(values):.2f})"
        )

    verdict = "ok" if report["ok"] else "BELOW"
    return "\n".join(
        [
            f"snapshots  backend={report['backend']}  events={report['events']:,}  "
            f"reps={report['reps']}  eventsource={Path(es.__file__).parent}",
            row("load, full replay", report["without_snapshot_ms"]),
            row(f"load, snapshot at {report['snapshot_at']:,}", report["with_snapshot_ms"]),
            f"{'speed-up (median / median)':<34}{report['speedup']:>10.1f} x    "
            f"target >= {report['target_speedup']:.0f} x  {verdict}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["memory", "sqlite", "postgres"], default="memory")
    parser.add_argument("--reps", type=int, default=9, help="timed loads of each kind (default 9)")
    parser.add_argument(
        "--pg-url",
        default=PG_URL,
        help="PostgreSQL URL (default $EVENTSOURCE_BENCH_PG_URL or database test)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = parser.parse_args()
    report = asyncio.run(run(args.backend, args.reps, args.pg_url))
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
