"""Benchmark DCB conditional appends on PostgreSQL against pyeventsourcing 9.5.6's DCB recorder.

    pip install -e '.[dev,bench]'   # eventsourcing==9.5.6 and psycopg, for the comparison
    .venv/bin/python benchmarks/dcb.py [--writers 8] [--ops 300] [--reps 3] [--json]

Every phase runs `--writers` concurrent writers, each on a tag of its own (disjoint tags), in a
fresh PostgreSQL schema, `--ops` operations per writer, and reports the median rate of `--reps`
repetitions (events appended per second, all writers together):

- `eventsource decide`: each operation is a decision as an application makes it: read a tag
  (`store.read`), then append one event tagged with it under the condition that nothing with
  that tag appeared since the read. Each writer takes a course of 10 seats at a time (tag
  `course:<writer>-<k>`, ten decisions each), so a read returns 0 to 9 events.
  Targets: >= 2,500/s and >= 2x pyeventsourcing.
- `eventsource append`: the conditional append alone (the token of one earlier read of a tag
  nobody writes), i.e. the lock-and-check cost without the read.
- `pyeventsourcing decide`: the same decisions through `PostgresDCBRecorderTT` (read, then
  append with `after=` the read's head), one thread per writer, a psycopg pool of `--writers`.
- `plain append (no DCB tables)` / `plain append (DCB tables installed)`: `append_events` of
  one event to each writer's own stream, in a schema without and with the DCB tables and
  index; installed but unused, DCB may cost the plain path at most 5 %.

Each of our runs also reports the client's CPU time per operation (`resource.getrusage`, the
median over the counted runs): client and server share the machine's cores, so what the
Python side spends per decision bounds the rate as much as the server does.

EVENTSOURCE_BENCH_PG_URL chooses the server (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from eventsource.dcb import AppendCondition, Query, QueryItem  # noqa: E402
from run import PG_URL, es  # noqa: E402

TARGET_RATE = 2500.0
TARGET_RATIO = 2.0
MAX_PLAIN_LOSS = 0.05
SEATS = 10  # decisions per tag: a decision reads at most SEATS - 1 earlier events
CLIENT_CPU: dict[str, list[float]] = {}  # our runs' client CPU per operation (µs), by mode


@es.register_event
class BenchSeatTaken(es.DomainEvent):
    """The benchmark's DCB event, tagged by its class."""

    event_type: str = "BenchSeatTaken"
    aggregate_type: str = "BenchSeat"
    course: str
    dcb_tags: ClassVar[tuple[str, ...]] = ("course:{course}",)


async def _schema() -> str:
    import asyncpg

    name = f"bench_dcb_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    return name


async def _drop(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def _ours(writers: int, ops: int, mode: str) -> float:
    """One timed run of our store: events/s."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.dcb.postgresql import PostgreSQLDCBStore
    from eventsource.stores.postgresql import PostgreSQLEventStore

    schema = await _schema()
    engine = create_async_engine(
        PG_URL.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=writers,
        connect_args={"server_settings": {"search_path": schema}},
    )
    store = PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False)
    dcb = PostgreSQLDCBStore(store)
    try:
        await store.initialize()
        if mode != "plain":
            await dcb.read(Query(QueryItem(tags=["warm-up"])))  # creates the DCB tables
        streams = [uuid.uuid4() for _ in range(writers)]

        async def writer(n: int) -> None:
            idle_query = Query(QueryItem(tags=[f"idle:{n}"]))
            idle = await dcb.read(idle_query) if mode == "append" else None
            for i in range(ops):
                course = _course(n, i)
                query = Query(QueryItem(tags=[f"course:{course}"]))
                event = BenchSeatTaken(aggregate_id=streams[n], course=course)
                if mode == "decide":
                    seen = await dcb.read(query)
                    await dcb.append([event], AppendCondition(query, seen.token))
                elif mode == "append":
                    assert idle is not None
                    await dcb.append([event], AppendCondition(idle_query, idle.token))
                else:
                    await store.append_events(streams[n], "BenchSeat", [event], i)

        started, cpu = time.perf_counter(), _cpu()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        elapsed = time.perf_counter() - started
        CLIENT_CPU.setdefault(mode, []).append((_cpu() - cpu) / (writers * ops) * 1e6)
        return writers * ops / elapsed
    finally:
        await store.close()
        await engine.dispose()
        await _drop(schema)


def _theirs(writers: int, ops: int) -> float:
    """One timed run of pyeventsourcing's PostgresDCBRecorderTT: events/s."""
    from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem
    from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
    from eventsourcing.postgres import PostgresDatastore
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    schema = asyncio.run(_schema())
    # Its DDL names one table unqualified (a foreign key): the schema must be on search_path.
    os.environ["PGOPTIONS"] = f"-c search_path={schema}"
    datastore = PostgresDatastore(
        url.database or "test", url.host or "127.0.0.1", url.port or 5432,
        url.username or "postgres", url.password or "", pool_size=writers, schema=schema,
    )
    try:
        recorder = PostgresDCBRecorderTT(datastore)
        recorder.create_table()
        barrier = threading.Barrier(writers + 1)

        def writer(n: int) -> None:
            barrier.wait()
            for i in range(ops):
                course = _course(n, i)
                query = DCBQuery(items=[DCBQueryItem(tags=[f"course:{course}"])])
                payload = json.dumps({"course": course}).encode()
                seen = recorder.read(query)
                list(seen)
                recorder.append(
                    [DCBEvent(type="BenchSeatTaken", data=payload, tags=[f"course:{course}"])],
                    DCBAppendCondition(fail_if_events_match=query, after=seen.head),
                )

        with ThreadPoolExecutor(writers) as pool:
            running = [pool.submit(writer, n) for n in range(writers)]
            barrier.wait()
            started = time.perf_counter()
            for done in running:
                done.result()
            return writers * ops / (time.perf_counter() - started)
    finally:
        datastore.close()
        asyncio.run(_drop(schema))


def _cpu() -> float:
    """This process's CPU time so far (user and system), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _course(writer: int, op: int) -> str:
    """The tag a decision reads and writes: a course of `SEATS` seats, each writer its own."""
    return f"{writer}-{op // SEATS}"


def _interleaved(reps: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The median rate of each run; the runs take turns (A B C A B C ...), so a load that
    drifts on the shared machine weighs on each alike. One warm-up round is not counted."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(reps + 1):
        for name, run in runs.items():
            rate = run()
            if round_number:
                rates[name].append(rate)
    return {name: statistics.median(values) for name, values in rates.items()}


def _ours_run(writers: int, ops: int, mode: str) -> Callable[[], float]:
    def run() -> float:
        return asyncio.run(_ours(writers, ops, mode))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--ops", type=int, default=300, help="operations per writer")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    decisions: dict[str, Callable[[], float]] = {
        "eventsource decide": _ours_run(args.writers, args.ops, "decide"),
        "eventsource append": _ours_run(args.writers, args.ops, "append"),
    }
    try:
        import eventsourcing.dcb.postgres_tt  # noqa: F401
    except ImportError:
        print("pyeventsourcing is not installed: pip install -e '.[bench]' (skipping it)")
    else:
        decisions["pyeventsourcing decide"] = lambda: _theirs(args.writers, args.ops)
    plain_runs = {
        "plain append (no DCB tables)": _ours_run(args.writers, args.ops, "plain"),
        "plain append (DCB tables installed)": _ours_run(args.writers, args.ops, "plain-dcb"),
    }
    results: dict[str, Any] = {}
    for runs in (decisions, plain_runs):
        for name, rate in _interleaved(args.reps, runs).items():
            results[name] = rate
            if not args.json:
                print(f"{name:40s} {rate:10.0f} events/s")
    for mode, values in CLIENT_CPU.items():
        cpu_per_op = statistics.median(values[1:] or values)  # the warm-up round not counted
        results[f"client CPU per op ({mode}), us"] = cpu_per_op
        if not args.json:
            print(f"{'client CPU per op (' + mode + ')':40s} {cpu_per_op:10.0f} us")
    verdicts = {"decide >= 2,500/s": results["eventsource decide"] >= TARGET_RATE}
    if "pyeventsourcing decide" in results:
        ratio = results["eventsource decide"] / results["pyeventsourcing decide"]
        results["ratio"] = ratio
        verdicts[f"decide >= {TARGET_RATIO}x pyeventsourcing ({ratio:.2f}x)"] = (
            ratio >= TARGET_RATIO
        )
    plain = results["plain append (no DCB tables)"]
    loss = 1 - results["plain append (DCB tables installed)"] / plain
    results["plain_loss"] = loss
    verdicts[f"plain append loss <= 5 % ({loss * 100:.1f} %)"] = loss <= MAX_PLAIN_LOSS
    if args.json:
        print(json.dumps({"results": results, "verdicts": verdicts}, indent=2))
    else:
        for verdict, ok in verdicts.items():
            print(f"{'PASS' if ok else 'FAIL'}  {verdict}")




if __name__ == "__main__":
    main()
