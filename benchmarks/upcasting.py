"""Benchmark upcasting on read: `read_all` over 100,000 events stored at version 1 and read as
version 3 through a two-step upcaster chain, against `read_all` over 100,000 events stored at
the current version, in two fresh stores of the same backend in the same run.

    .venv/bin/python benchmarks/upcasting.py --backend sqlite|postgres [--events N] [--reps N]
                                              [--json]

Stores are opened as `run.py` opens them (fresh file or schema). Prints the median read time of
each (min-max over the repetitions) and the ratio upcast / current, target <= 1.25. See
docs/reference/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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

from eventsource.evolution import default_upcasters  # noqa: E402
from run import PG_URL, es, open_store  # noqa: E402

TARGET_RATIO = 1.25
STREAMS = 100
AGGREGATE = "BenchCustomer"


class CustomerJoined(es.DomainEvent):
    """Version 3: `full_name` (v1 had `name`) and `tier` (added in v3)."""

    event_type: str = "BenchCustomerJoined"
    aggregate_type: str = AGGREGATE
    event_version: int = 3
    full_name: str
    email: str
    tier: str
    points: int


class CustomerJoinedV1(es.DomainEvent):
    """How the first release wrote the event (not registered: only its rows remain)."""

    event_type: str = "BenchCustomerJoined"
    aggregate_type: str = AGGREGATE
    name: str
    email: str
    points: int


def _rename(data: dict[str, Any]) -> dict[str, Any]:
    data["full_name"] = data.pop("name")
    return data


def _add_tier(data: dict[str, Any]) -> dict[str, Any]:
    data["tier"] = "basic"
    return data


def setup() -> None:
    es.default_registry.register(CustomerJoined)
    default_upcasters.register("BenchCustomerJoined", 1, _rename)
    default_upcasters.register("BenchCustomerJoined", 2, _add_tier)


async def fill(store: Any, events: int, old: bool) -> None:
    per_stream = events // STREAMS
    for s in range(STREAMS):
        aggregate = uuid.uuid4()
        batch: list[es.DomainEvent] = []
        for v in range(1, per_stream + 1):
            n = s * per_stream + v
            fields = {"email": f"c{n}@example.com", "points": n}
            if old:
                batch.append(CustomerJoinedV1(aggregate_id=aggregate, aggregate_version=v,
                                              name=f"customer {n}", **fields))
            else:
                batch.append(CustomerJoined(aggregate_id=aggregate, aggregate_version=v,
                                            full_name=f"customer {n}", tier="basic", **fields))
        for start in range(0, per_stream, 1000):
            await store.append_events(aggregate, AGGREGATE, batch[start:start + 1000], start)


async def read_seconds(store: Any, events: int) -> float:
    gc.collect()
    started = time.perf_counter()
    count = 0
    async for stored in store.read_all():
        count += 1
        last = stored.event
    elapsed = time.perf_counter() - started
    assert count == events, count
    assert isinstance(last, CustomerJoined), last
    assert last.tier == "basic", last
    return elapsed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    setup()
    times: dict[str, list[float]] = {"current": [], "upcast": []}
    async with open_store(args.backend, args.pg_url) as current, open_store(
        args.backend, args.pg_url
    ) as upcast:
        await fill(current, args.events, old=False)
        await fill(upcast, args.events, old=True)
        await read_seconds(current, args.events)  # warm-up: caches, the database's pages
        await read_seconds(upcast, args.events)
        for _ in range(args.reps):  # interleaved, so drift hits both alike
            times["current"].append(await read_seconds(current, args.events))
            times["upcast"].append(await read_seconds(upcast, args.events))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["upcast"] / medians["current"]
    return {
        "backend": args.backend, "events": args.events, "reps": args.reps,
        "seconds": {name: {"median": medians[name], "min": min(values), "max": max(values)}
                    for name, values in times.items()},
        "ratio": ratio, "target": TARGET_RATIO, "ok": ratio <= TARGET_RATIO,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["memory", "sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name in ("current", "upcast"):
            s = report["seconds"][name]
            rate = report["events"] / s["median"]
            print(f"{args.backend:9} {name:8} {s['median']:.3f} s "
                  f"({s['min']:.3f}-{s['max']:.3f})  {rate:,.0f} events/s")
        print(f"ratio upcast/current {report['ratio']:.3f} "
              f"(target <= {TARGET_RATIO}): {'ok' if report['ok'] else 'MISSED'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
