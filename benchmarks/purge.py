"""Benchmark retention: the purge job's rate while writers append, and what the retention
part of a stream read costs.

    .venv/bin/python benchmarks/purge.py purge --backend postgres|sqlite [--streams N] [--batch N]
    .venv/bin/python benchmarks/purge.py reads --backend postgres|sqlite [--src DIR]

`purge`: seeds N streams of 100 events (run.py's events), gives each the rule max_count=1,
then measures the p99 latency of single-event appends by 4 concurrent writers for 3 s without
a purge, and again while `PurgeJob(batch_size=5000)` (or `--batch`) deletes the 99 * N hidden
events. Prints the purge rate (target >= 50,000 events/s on PostgreSQL) and both p99s
(target: a rise of < 20 ms).

`reads`: median time of `get_events` of a 20-event stream in a store without metadata rows
(the common case), over 2,000 reads after 200 warm-up ones. `--src DIR` imports the library
from another checkout's src/ (for example the commit before retention) to compare the same
read without the retention part; run both and compare. See docs/reference/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def _setup(src: str | None) -> None:
    sys.path[:0] = [src or str(_HERE.parent / "src"), str(_HERE)]
    import eventsource  # now, from `src`: run.py puts this checkout's src/ first

    del eventsource


EVENTS_PER_STREAM = 100
WRITERS = 4


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def _appends(store: Any, make_event: Any, seconds: float, stop: asyncio.Event) -> list[float]:
    """Single-event appends by WRITERS tasks (each its own stream) until `stop` or `seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        stream = uuid.uuid4()
        version = 0
        while time.perf_counter() < deadline and not stop.is_set():
            started = time.perf_counter()
            await store.append_events(
                stream, "BenchCart", [make_event(stream, version + 1, version)], version
            )
            latencies.append(time.perf_counter() - started)
            version += 1

    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    return latencies


async def purge(backend: str, streams: int, batch_size: int) -> None:
    from eventsource.retention import PurgeJob, RetentionRule, StreamRetention
    from run import PG_URL, make_event, open_store

    async with open_store(backend, PG_URL) as store:
        retention = StreamRetention(store)
        ids = [uuid.uuid4() for _ in range(streams)]
        i = 0
        for stream in ids:
            batch = [make_event(stream, v + 1, i + v) for v in range(EVENTS_PER_STREAM)]
            i += EVENTS_PER_STREAM
            await store.append_events(stream, "BenchCart", batch, 0)
            await retention.set_rule(stream, "BenchCart", RetentionRule(max_count=1))
        quiet = await _appends(store, make_event, 3.0, asyncio.Event())
        stop = asyncio.Event()
        job = PurgeJob(store, batch_size=batch_size)

        async def timed_purge() -> tuple[int, float]:
            started = time.perf_counter()
            report = await job.run()
            elapsed = time.perf_counter() - started
            stop.set()
            return report.events, elapsed

        (deleted, elapsed), busy = await asyncio.gather(
            timed_purge(), _appends(store, make_event, 600.0, stop)
        )
        print(f"backend={backend} streams={streams} batch={batch_size} deleted={deleted} in "
              f"{elapsed:.2f} s: {deleted / elapsed:,.0f} events/s")
        print(f"append p99 without purge {_p99(quiet):.2f} ms ({len(quiet)} appends), "
              f"during purge {_p99(busy):.2f} ms ({len(busy)} appends): "
              f"rise {_p99(busy) - _p99(quiet):+.2f} ms")


async def reads(backend: str) -> None:
    from run import PG_URL, make_event, open_store

    async with open_store(backend, PG_URL) as store:
        stream = uuid.uuid4()
        await store.append_events(
            stream, "BenchCart", [make_event(stream, v + 1, v) for v in range(20)], 0
        )
        for _ in range(200):
            await store.get_events(stream, "BenchCart")
        samples = []
        for _ in range(2000):
            started = time.perf_counter()
            await store.get_events(stream, "BenchCart")
            samples.append(time.perf_counter() - started)
        import eventsource

        print(f"backend={backend} src={Path(eventsource.__file__).parents[1]} "
              f"get_events(20 events) median {statistics.median(samples) * 1e6:.1f} us, "
              f"p90 {sorted(samples)[int(len(samples) * 0.9)] * 1e6:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["purge", "reads"])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=5000, help="the purge's batch_size")
    parser.add_argument("--src", default=None, help="import eventsource from this src/ dir")
    args = parser.parse_args()
    _setup(args.src)
    if args.what == "purge":
        asyncio.run(purge(args.backend, args.streams, args.batch))
    else:
        asyncio.run(reads(args.backend))


if __name__ == "__main__":
    main()
