"""Benchmark the synchronous facade's overhead per call over the same call awaited on a loop.

    .venv/bin/python benchmarks/sync.py [--calls N] [--reps N] [--threads N] [--json]

In-memory store, so the store's own work is tiny and the difference is the facade: the hop to
the portal's loop thread and back. For each operation the same `InMemoryEventStore` is called
`--calls` times (a) awaited in a coroutine on the portal's loop and (b) through
`SyncEventStore` from the main thread; the overhead is (b) - (a) per call, target <= 100 us
(median of `--reps` repetitions). For comparison, (c) hands the same call over with
`asyncio.run_coroutine_threadsafe` (a Task per call). `--threads N` also times N threads
calling at once (total calls/s). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# This checkout's src/ first (as run.py does), so whatever import comes first measures it.
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from eventsource.sync import Portal, SyncEventStore  # noqa: E402
from run import AGGREGATE_TYPE, es, make_event  # noqa: E402

TARGET_US = 100.0

Operation = Callable[[Any], Awaitable[Any]]  # (async store) -> awaitable
Call = Callable[[SyncEventStore], Any]  # (facade) -> result: the same operation, blocking
Series = Callable[[int], tuple[Operation, Call]]  # the i-th call of a series


def operations(stream: uuid.UUID) -> dict[str, Series]:
    """Each operation, async and through the facade. A series' calls are made before it is
    timed (an append's event is built there)."""

    def position(i: int) -> tuple[Operation, Call]:
        return (lambda store: store.get_global_position(),
                lambda facade: facade.get_global_position())

    def events(i: int) -> tuple[Operation, Call]:
        return (lambda store: store.get_events(stream, AGGREGATE_TYPE),
                lambda facade: facade.get_events(stream, AGGREGATE_TYPE))

    def append(i: int) -> tuple[Operation, Call]:
        event = make_event(uuid.uuid4(), 1, i)
        aggregate_id = event.aggregate_id
        return (lambda store: store.append_events(aggregate_id, AGGREGATE_TYPE, [event], 0),
                lambda facade: facade.append_events(aggregate_id, AGGREGATE_TYPE, [event], 0))

    return {
        "get_global_position": position,
        "get_events (10 events)": events,
        "append_events (1 event)": append,
    }


def time_async(facade: SyncEventStore, series: Series, calls: int) -> float:
    """Seconds per call, awaited in one coroutine on the portal's loop."""

    async def loop_side(store: Any) -> float:
        ops = [series(i)[0] for i in range(calls)]
        started = time.perf_counter()
        for op in ops:
            await op(store)
        return (time.perf_counter() - started) / calls

    return facade.run(loop_side)


def time_sync(facade: SyncEventStore, series: Series, calls: int) -> float:
    """Seconds per call of the facade's method, from this (the main) thread."""
    ops = [series(i)[1] for i in range(calls)]
    started = time.perf_counter()
    for op in ops:
        op(facade)
    return (time.perf_counter() - started) / calls


def time_threadsafe(facade: SyncEventStore, series: Series, calls: int) -> float:
    """Seconds per call handed over with `asyncio.run_coroutine_threadsafe` instead."""
    store = facade.run(_itself)
    loop = facade.portal.call(_running_loop)

    async def one(op: Operation) -> Any:
        return await op(store)

    ops = [series(i)[0] for i in range(calls)]
    started = time.perf_counter()
    for op in ops:
        asyncio.run_coroutine_threadsafe(one(op), loop).result()
    return (time.perf_counter() - started) / calls


async def _itself(store: Any) -> Any:
    return store


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def time_threads(facade: SyncEventStore, threads: int, calls: int) -> float:
    """Calls per second of `threads` threads each making `calls` get_global_position calls."""
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        barrier.wait()
        for _ in range(calls):
            facade.get_global_position()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return threads * calls / (time.perf_counter() - started)


def run(calls: int, reps: int, threads: int) -> dict[str, Any]:
    with Portal("bench-sync") as portal:
        facade = SyncEventStore.in_memory(portal=portal)
        stream = uuid.uuid4()
        first_ten = [make_event(stream, v, v) for v in range(1, 11)]
        facade.append_events(stream, AGGREGATE_TYPE, first_ten, 0)
        results: dict[str, Any] = {}
        for name, series in operations(stream).items():
            samples: dict[str, list[float]] = {"async": [], "sync": [], "threadsafe": []}
            for _ in range(reps):
                for kind, timer in (("async", time_async), ("sync", time_sync),
                                    ("threadsafe", time_threadsafe)):
                    gc.collect()
                    samples[kind].append(timer(facade, series, calls) * 1e6)
            overheads = [s - a for s, a in zip(samples["sync"], samples["async"], strict=True)]
            results[name] = {
                "async_us": samples["async"],
                "sync_us": samples["sync"],
                "threadsafe_us": samples["threadsafe"],
                "overhead_us": overheads,
                "ok": statistics.median(overheads) <= TARGET_US,
            }
        threaded = time_threads(facade, threads, calls) if threads else None
    return {
        "calls": calls,
        "reps": reps,
        "target_overhead_us": TARGET_US,
        "operations": results,
        "threads": threads,
        "threaded_calls_per_s": threaded,
        "ok": all(r["ok"] for r in results.values()),
    }


def format_report(report: dict[str, Any]) -> str:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"

    lines = [
        f"sync facade  in-memory store  calls={report['calls']:,}  reps={report['reps']}  "
        f"eventsource={Path(es.__file__).parent}",
        f"{'operation':<26}{'async us/call':>22}{'sync us/call':>22}{'overhead us':>22}"
        f"{'run_coroutine_threadsafe':>27}",
    ]
    for name, r in report["operations"].items():
        verdict = "ok" if r["ok"] else "ABOVE"
        lines.append(
            f"{name:<26}{cell(r['async_us']):>22}{cell(r['sync_us']):>22}"
            f"{cell(r['overhead_us']):>22}{cell(r['threadsafe_us']):>27}  {verdict}"
        )
    lines.append(f"target: overhead <= {report['target_overhead_us']:.0f} us per call (median)")
    if report["threaded_calls_per_s"]:
        lines.append(
            f"{report['threads']} threads calling get_global_position at once: "
            f"{report['threaded_calls_per_s']:,.0f} calls/s in total"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000, help="calls per series (5000)")
    parser.add_argument("--reps", type=int, default=5, help="series of each kind (5)")
    parser.add_argument("--threads", type=int, default=8, help="threads at once; 0: skip (8)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = parser.parse_args()
    report = run(args.calls, args.reps, args.threads)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
