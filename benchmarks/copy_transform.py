"""Benchmark the copy-transform: every event of a SQLite file copied into a fresh PostgreSQL
schema through a transform that looks one event ahead in its stream (as a merge rule does),
with progress output on (a line on stderr per report, twice a second).

    .venv/bin/python benchmarks/copy_transform.py [--events 50000] [--batch 2000] [--reps 3]

The source holds `--events` events in 1,000 streams, appended 50 at a time round-robin (so
streams interleave in the global order); it is seeded once, before the timed copies. Each
repetition copies into a new schema (opened as `run.py` opens its PostgreSQL stores). Prints
the median events/s and the min-max over the repetitions; the target is >= 20,000 events/s.
See docs/reference/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# This checkout's src/ first (as run.py does), so whatever import comes first measures it.
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from eventsource.transfer import Step, TransferProgress, TransformResult, copy_events  # noqa: E402
from run import AGGREGATE_TYPE, PG_URL, make_event, open_store  # noqa: E402

TARGET = 20_000.0
STREAMS = 1_000
APPEND = 50


def look_ahead(step: Step) -> TransformResult:
    """Keeps every event, after looking at the next one of its stream (a merge rule's cost)."""
    step.ahead(1)
    return step.event.event


def show(progress: TransferProgress) -> None:
    eta = progress.eta_seconds
    print(
        f"  {progress.events_read:>8,} events  {progress.events_per_second:>9,.0f} events/s  "
        f"ETA {'-' if eta is None else f'{eta:.1f} s'}",
        file=sys.stderr,
    )


async def seed(store: Any, events: int) -> None:
    streams = [uuid.uuid4() for _ in range(STREAMS)]
    versions = dict.fromkeys(streams, 0)
    made = 0
    while made < events:
        for stream in streams:
            if made >= events:
                break
            count = min(APPEND, events - made)
            start = versions[stream]
            batch = [make_event(stream, start + n + 1, made + n) for n in range(count)]
            await store.append_events(stream, AGGREGATE_TYPE, batch, start)
            versions[stream] = start + count
            made += count


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rates: list[float] = []
    async with open_store("sqlite", args.pg_url) as source:
        await seed(source, args.events)
        for _ in range(args.reps):
            async with open_store("postgres", args.pg_url) as target:
                started = time.perf_counter()
                done = await copy_events(source, target, look_ahead, batch_size=args.batch,
                                         on_progress=show, progress_interval=0.5)
                seconds = time.perf_counter() - started
                assert done.events_written == args.events, done
                rates.append(args.events / seconds)
    return {
        "workload": "copy SQLite -> PostgreSQL, look-ahead transform, progress on",
        "events": args.events,
        "batch": args.batch,
        "median_events_per_s": statistics.median(rates),
        "min_events_per_s": min(rates),
        "max_events_per_s": max(rates),
        "target_events_per_s": TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    median = report["median_events_per_s"]
    print(json.dumps(report, indent=2) if args.json else (
        f"{report['workload']}: {report['events']:,} events, batch {report['batch']}: "
        f"median {median:,.0f} events/s (min {report['min_events_per_s']:,.0f}, max "
        f"{report['max_events_per_s']:,.0f}); target >= {TARGET:,.0f}: "
        f"{'ok' if median >= TARGET else 'MISSED'}"
    ))
    return 0 if report["median_events_per_s"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
