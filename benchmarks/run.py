"""Benchmark the event stores through the public API and print the rates next to their targets.

    .venv/bin/python benchmarks/run.py --backend memory|sqlite|postgres [--workloads W1,W2]
                                       [--quick] [--reps N] [--json]

The checkout's own `src/` comes first on `sys.path`, so this measures the code next to it. See
benchmarks/README.md for the workloads and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parent.parent / "src"
if (_SRC / "eventsource").is_dir():
    sys.path.insert(0, str(_SRC))

import eventsource as es  # noqa: E402  (after the sys.path line, on purpose)
from eventsource._sql.postgresql import asyncpg_url  # noqa: E402

AGGREGATE_TYPE = "BenchCart"
# Any of postgresql://, postgres:// and postgresql+asyncpg://, kept in the first form.
PG_URL = asyncpg_url(
    os.environ.get("EVENTSOURCE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
NAMES = (  # ~43 characters each
    "Widget deluxe edition, colour blue, size M.",
    "Gadget standard edition, colour red, size L",
    "Sprocket compact edition, colour green, S..",
    "Doohickey premium edition, colour black, XL",
)


@es.register_event
class BenchItemAdded(es.DomainEvent):
    """The benchmark event: six payload fields of the usual kinds."""

    event_type: str = "BenchItemAdded"
    aggregate_type: str = AGGREGATE_TYPE
    item_id: uuid.UUID
    name: str
    amount: Decimal
    due_at: datetime
    sku: str
    quantity: int


def make_event(aggregate_id: uuid.UUID, version: int, i: int) -> BenchItemAdded:
    """Event number `i`, the `version`-th of its stream."""
    return BenchItemAdded(
        aggregate_id=aggregate_id,
        aggregate_version=version,
        item_id=uuid.uuid4(),
        name=NAMES[i % 4],
        amount=Decimal(f"{i * 37 % 100_000}.{i % 100:02d}"),
        due_at=BASE_TIME + timedelta(seconds=i),
        sku=f"SKU-{i:08d}",
        quantity=i % 17 + 1,
    )


# --------------------------------------------------------------------------- sizes and targets


@dataclass(frozen=True)
class Sizes:
    e0: int = 10_000
    w1: int = 10_000
    w1_streams: int = 1_000
    w2_streams: int = 20
    w2_batches: int = 10
    batch: int = 100
    w3: int = 1_000
    w3_loads: int = 10
    w4: int = 20_000
    writers: int = 8
    w5a: int = 250  # appends per writer
    w5b: int = 25  # successful appends per writer
    m1: int = 100_000


QUICK = Sizes(
    e0=2_000, w1=1_000, w1_streams=100, w2_streams=4, w3_loads=3, w4=4_000, w5a=50, w5b=5, m1=20_000
)

# (workload, backend) -> (bound, "min" | "max"); "any" applies to every backend.
TARGETS: dict[tuple[str, str], tuple[float, str]] = {
    ("E0", "any"): (100_000, "min"),
    ("W1", "memory"): (300_000, "min"),
    ("W2", "memory"): (1_000_000, "min"),
    ("W4", "memory"): (2_000_000, "min"),
    ("M1", "memory"): (2_000, "max"),
    ("W1", "sqlite"): (5_000, "min"),
    ("W2", "sqlite"): (60_000, "min"),
    ("W3", "sqlite"): (100_000, "min"),
    ("W4", "sqlite"): (100_000, "min"),
    ("W1", "postgres"): (1_100, "min"),
    ("W2", "postgres"): (30_000, "min"),
    ("W3", "postgres"): (70_000, "min"),
    ("W4", "postgres"): (70_000, "min"),
    ("W5a", "postgres"): (2_500, "min"),
}

DESCRIPTIONS = {
    "E0": "build an event (no store)",
    "W1": "single appends, exact expected version",
    "W2": "100-event batch appends",
    "W3": "load a 1,000-event stream",
    "W4": "read_all, async for",
    "W5a": "8 writers, distinct streams",
    "W5b": "8 writers racing on one stream",
    "W5b_conflicts": "  conflicts per success",
    "M1": "RSS growth per held event",
}
DEFAULT_WORKLOADS = {
    "memory": ["E0", "W1", "W2", "W3", "W4", "M1"],
    "sqlite": ["E0", "W1", "W2", "W3", "W4"],
    "postgres": ["E0", "W1", "W2", "W3", "W4", "W5"],
}


@dataclass
class Result:
    unit: str
    values: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": statistics.median(self.values),
            "min": min(self.values),
            "max": max(self.values),
            "reps": self.values,
            **self.extra,
        }


# --------------------------------------------------------------------------- stores


@contextlib.asynccontextmanager
async def open_store(backend: str, pg_url: str, hop: bool = False) -> AsyncIterator[Any]:
    """A fresh, empty store of `backend`, torn down (files, schema) on exit."""
    if backend == "memory":
        yield es.InMemoryEventStore()
    elif backend == "sqlite":
        async with _sqlite_store(hop) as store:
            yield store
    elif backend == "postgres":
        async with _postgres_store(pg_url) as store:
            yield store
    else:
        raise ValueError(f"unknown backend {backend!r}")


@contextlib.asynccontextmanager
async def _sqlite_store(hop: bool) -> AsyncIterator[Any]:
    from eventsource.stores.sqlite import SQLiteEventStore

    directory = tempfile.mkdtemp(prefix="eventsource-bench-")
    try:
        path = os.path.join(directory, "events.db")  # WAL is the default
        store = SQLiteEventStore(path, inline=False) if hop else SQLiteEventStore(path)
        async with store:
            await store.initialize()
            yield store
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def _postgres_store(pg_url: str) -> AsyncIterator[Any]:
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.stores.postgresql import PostgreSQLEventStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_async_engine(
            pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=10,
            max_overflow=10,
            connect_args={"server_settings": {"search_path": schema}},
        )
        try:
            await _create_events_table(engine)
            store = PostgreSQLEventStore(async_sessionmaker(engine, expire_on_commit=False))
            try:
                yield store
            finally:
                await store.close()
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def _create_events_table(engine: Any) -> None:
    """Create the shipped `events` table (the store must work over exactly that table, API 3.5)."""
    from sqlalchemy import text

    from eventsource.migrations import get_schema, split_statements

    try:
        script = get_schema("events", "postgresql")
    except FileNotFoundError:
        return  # no shipped SQL in this checkout: the store creates its table on first use
    async with engine.begin() as conn:
        for statement in split_statements(script):
            await conn.execute(text(statement))


# --------------------------------------------------------------------------- workloads

Plan = list[tuple[uuid.UUID, list[BenchItemAdded], int]]


class Counter:
    """Numbers events across a run so every payload differs."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def build_plan(streams: int, batches: int, batch: int, counter: Counter) -> Plan:
    """Appends round-robin over fresh streams: every stream gets batch k before any gets k+1."""
    ids = [uuid.uuid4() for _ in range(streams)]
    plan: Plan = []
    for round_ in range(batches):
        expected = round_ * batch
        for aggregate_id in ids:
            events = [
                make_event(aggregate_id, expected + k + 1, counter.next()) for k in range(batch)
            ]
            plan.append((aggregate_id, events, expected))
    return plan


async def run_plan(store: Any, plan: Plan) -> None:
    append = store.append_events
    for aggregate_id, events, expected in plan:
        await append(aggregate_id, AGGREGATE_TYPE, events, expected)


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    """Seconds `action` takes, after a collection so earlier garbage is not billed to it."""
    gc.collect()
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


@dataclass
class Bench:
    backend: str
    sizes: Sizes
    reps: int
    pg_url: str
    hop: bool = False
    counter: Counter = field(default_factory=Counter)

    def store(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return open_store(self.backend, self.pg_url, self.hop)

    async def e0(self) -> Result:
        n, aggregate_id, rates = self.sizes.e0, uuid.uuid4(), []
        for rep in range(self.reps + 1):  # the first round warms up
            gc.collect()
            start = time.perf_counter()
            for i in range(n):
                make_event(aggregate_id, i + 1, i)
            if rep:
                rates.append(n / (time.perf_counter() - start))
        return Result("events/s", rates, {"n": n})

    async def w1(self) -> Result:
        s = self.sizes
        rates = []
        for _ in range(self.reps):
            async with self.store() as store:
                await run_plan(store, build_plan(10, 10, 1, self.counter))  # warm-up
                plan = build_plan(s.w1_streams, s.w1 // s.w1_streams, 1, self.counter)
                rates.append(len(plan) / await timed(lambda: run_plan(store, plan)))  # noqa: B023
        return Result("appends/s", rates, {"n": s.w1, "streams": s.w1_streams})

    async def w2(self) -> Result:
        s = self.sizes
        n = s.w2_streams * s.w2_batches * s.batch
        rates = []
        for _ in range(self.reps):
            async with self.store() as store:
                await run_plan(store, build_plan(2, 2, s.batch, self.counter))  # warm-up
                plan = build_plan(s.w2_streams, s.w2_batches, s.batch, self.counter)
                rates.append(n / await timed(lambda: run_plan(store, plan)))  # noqa: B023
        return Result("events/s", rates, {"n": n, "batch": s.batch})

    async def w3(self) -> Result:
        s = self.sizes
        async with self.store() as store:
            plan = build_plan(1, s.w3 // s.batch, s.batch, self.counter)
            await run_plan(store, plan)
            aggregate_id = plan[0][0]
            del plan

            async def loads() -> None:
                for _ in range(s.w3_loads):
                    stream = await store.get_events(aggregate_id, AGGREGATE_TYPE)
                    if len(stream.events) != s.w3:
                        raise AssertionError(f"loaded {len(stream.events)} events, not {s.w3}")

            await loads()  # warm-up and check
            rates = [s.w3 * s.w3_loads / await timed(loads) for _ in range(max(self.reps, 5))]
        return Result("events/s", rates, {"n": s.w3, "loads_per_rep": s.w3_loads})

    async def w4(self) -> Result:
        s = self.sizes
        per_stream = s.w2_batches * s.batch
        async with self.store() as store:
            await run_plan(
                store, build_plan(s.w4 // per_stream, s.w2_batches, s.batch, self.counter)
            )
            total = (s.w4 // per_stream) * per_stream

            async def read() -> None:
                count, last = 0, None
                async for stored in store.read_all():
                    last = stored.event
                    count += 1
                if count != total or not isinstance(last, BenchItemAdded):
                    raise AssertionError(f"read_all gave {count} events (last {last!r:.80})")

            await read()  # warm-up and check
            rates = [total / await timed(read) for _ in range(self.reps)]
        return Result("events/s", rates, {"n": total})

    async def w5(self) -> dict[str, Result]:
        s = self.sizes
        distinct, racing, conflicts = [], [], []
        async with self.store() as store:
            # Warm up alone first: lazy first-use setup in a store is not what W5 measures.
            await run_plan(store, build_plan(1, 1, 1, self.counter))
            await self._distinct(store, max(1, s.w5a // 10))
            for _ in range(self.reps):
                distinct.append(await self._distinct(store, s.w5a))
            for _ in range(self.reps):
                rate, per_success = await self._race(store, s.w5b)
                racing.append(rate)
                conflicts.append(per_success)
        return {
            "W5a": Result("appends/s", distinct, {"writers": s.writers, "n": s.writers * s.w5a}),
            "W5b": Result("successes/s", racing, {"writers": s.writers, "n": s.writers * s.w5b}),
            "W5b_conflicts": Result("conflicts/success", conflicts),
        }

    async def _distinct(self, store: Any, each: int) -> float:
        plans = [build_plan(1, each, 1, self.counter) for _ in range(self.sizes.writers)]
        seconds = await timed(lambda: asyncio.gather(*(run_plan(store, p) for p in plans)))
        return self.sizes.writers * each / seconds

    async def _race(self, store: Any, each: int) -> tuple[float, float]:
        """Writers read the version, append at it, and on a conflict read again and retry."""
        aggregate_id, conflicts = uuid.uuid4(), 0

        async def writer() -> None:
            nonlocal conflicts
            done = 0
            while done < each:
                version = await store.get_stream_version(aggregate_id, AGGREGATE_TYPE)
                event = make_event(aggregate_id, version + 1, self.counter.next())
                try:
                    await store.append_events(aggregate_id, AGGREGATE_TYPE, [event], version)
                except es.OptimisticLockError:
                    conflicts += 1
                else:
                    done += 1

        writers = self.sizes.writers
        seconds = await timed(lambda: asyncio.gather(*(writer() for _ in range(writers))))
        final = await store.get_stream_version(aggregate_id, AGGREGATE_TYPE)
        if final != writers * each:
            raise AssertionError(f"raced stream ended at version {final}, not {writers * each}")
        return writers * each / seconds, conflicts / (writers * each)

    async def m1(self) -> Result:
        per_event, peaks = [], []
        for _ in range(self.reps):
            child = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, __file__, "--m1-child", str(self.sizes.m1)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if child.returncode != 0:
                raise RuntimeError(f"M1 child failed: {child.stderr.strip()[-2000:]}")
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            per_event.append(measured["bytes_per_event"])
            peaks.append(measured["peak_rss_mib"])
        return Result(
            "bytes/event", per_event, {"n": self.sizes.m1, "peak_rss_mib": statistics.median(peaks)}
        )


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; 0 where it is not available)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


async def m1_child(n: int) -> dict[str, float]:
    """In a fresh process: hold `n` events (1,000 streams of 100) in an InMemoryEventStore."""
    store = es.InMemoryEventStore()
    counter = Counter()
    make_event(uuid.uuid4(), 1, 0)  # warm the validator before the baseline
    gc.collect()
    before = rss_bytes()
    batch = 100
    for _ in range(max(1, n // batch)):
        aggregate_id = uuid.uuid4()
        events = [make_event(aggregate_id, k + 1, counter.next()) for k in range(batch)]
        await store.append_events(aggregate_id, AGGREGATE_TYPE, events, 0)
    del events
    gc.collect()
    held = await store.get_event_count()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"bytes_per_event": (rss_bytes() - before) / held, "peak_rss_mib": peak, "n": held}


# --------------------------------------------------------------------------- report


def target_of(workload: str, backend: str) -> tuple[float, str] | None:
    return TARGETS.get((workload, backend)) or TARGETS.get((workload, "any"))


def verdict(summary: dict[str, Any], target: tuple[float, str] | None) -> str:
    if target is None:
        return ""
    bound, kind = target
    met = summary["median"] >= bound if kind == "min" else summary["median"] <= bound
    return "ok" if met else "BELOW" if kind == "min" else "ABOVE"


def format_table(report: dict[str, Any]) -> str:
    backend = report["backend"]
    lines = [
        f"eventsource {report['eventsource_version']} ({report['eventsource_path']}) on {backend}, "
        f"python {report['python']}, {report['cpus']} CPUs, {report['reps']} reps"
        + (", QUICK sizes" if report["quick"] else "")
        + (", inline=False" if report.get("hop") else ""),
        "",
        f"{'id':<14}{'workload':<40}{'median':>13}  {'min - max':<28}{'unit':<18}{'target':<14}",
        "-" * 130,
    ]
    for name, summary in report["results"].items():
        target = target_of(name, backend)
        bound = (
            "" if target is None else (f"{'>=' if target[1] == 'min' else '<='} {target[0]:,.0f}")
        )
        lines.append(
            f"{name:<14}{DESCRIPTIONS.get(name, ''):<40}{_num(summary['median']):>13}  "
            f"{_num(summary['min']) + ' - ' + _num(summary['max']):<28}{summary['unit']:<18}"
            f"{bound:<14}{verdict(summary, target)}"
        )
    lines.extend(f"{name:<14}ERROR {error}" for name, error in report["errors"].items())
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:,.2f}" if value < 10 else f"{value:,.0f}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(
        args.backend, QUICK if args.quick else Sizes(), args.reps, args.pg_url, args.hop
    )
    report: dict[str, Any] = {
        "backend": args.backend,
        "eventsource_version": es.__version__,
        "eventsource_path": str(Path(es.__file__).parent),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "reps": args.reps,
        "quick": args.quick,
        "hop": args.hop,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": vars(bench.sizes),
        "results": {},
        "errors": {},
    }
    for workload in args.workloads:
        started = time.perf_counter()
        try:
            if workload == "W5":
                for name, result in (await bench.w5()).items():
                    report["results"][name] = result.summary()
            else:
                result = await getattr(bench, workload.lower())()
                report["results"][workload] = result.summary()
        except Exception as exc:  # one failing workload must not hide the others
            report["errors"][workload] = f"{type(exc).__name__}: {exc}"
        if args.verbose:
            print(f"{workload} took {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["memory", "sqlite", "postgres"], default="memory")
    parser.add_argument("--workloads", help="comma-separated subset of E0,W1,W2,W3,W4,W5,M1")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 reps: a smoke run")
    parser.add_argument("--reps", type=int, help="timed repetitions per workload (default 5)")
    parser.add_argument(
        "--pg-url",
        default=PG_URL,
        type=asyncpg_url,
        help="PostgreSQL URL (default $EVENTSOURCE_BENCH_PG_URL or database test)",
    )
    parser.add_argument(
        "--hop",
        action="store_true",
        help="sqlite: SQLiteEventStore(inline=False) (every call in the driver's thread)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--m1-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.reps = args.reps or (3 if args.quick else 5)
    if args.workloads:
        args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
        unknown = set(args.workloads) - {"E0", "W1", "W2", "W3", "W4", "W5", "M1"}
        if unknown:
            parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
        if "M1" in args.workloads and args.backend != "memory":
            parser.error("M1 measures InMemoryEventStore: use --backend memory")
    else:
        args.workloads = DEFAULT_WORKLOADS[args.backend]
    return args


def main() -> int:
    args = parse_args()
    if args.m1_child:
        print(json.dumps(asyncio.run(m1_child(args.m1_child))))
        return 0
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=1) if args.json else format_table(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
