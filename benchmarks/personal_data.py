"""Benchmark personal data: what sealing two marked fields costs appends and reads, and forget.

    .venv/bin/python benchmarks/personal_data.py --backend sqlite|postgres [--reps N] [--json]

One store (opened as `run.py` opens it: a fresh file or schema) with a `PersonalData` attached
whose key store lives in the same database. Two event classes with the same fields, one with
two fields marked `Personal` (and a `SubjectId`), one without markers; 100 subjects, their keys
created before timing (a warm key cache). Interleaved repetitions, same run:

* A1: single-event appends (`append_events` of one event, as an aggregate save does),
  1,000 per repetition and side, alternating append by append, protected vs unprotected:
  ratio target <= 1.15.
* A2: 100-event batch appends, 20 batches per repetition and side (informational).
* R1: `get_events` of a 1,000-event stream, 10 loads per repetition and side: ratio target
  <= 1.2. R1c: 10 protected loads with the opened-payload cache off (`opened_payloads=0`):
  every read parses and decrypts every marked field (informational; its ratio is over R1's
  unprotected time).
* F1: `forget` of a subject that has 5,000 events (keys deleted, the erasure recorded, the
  `PersonalDataErased` event appended): target < 50 ms, and no slower than for a subject
  with 1 event.

Within a repetition the two sides alternate in rounds (A2: 5 of 4 batches, R1: 10 of one
load), the side going first alternating too, and each timing starts after a garbage
collection with the survivors frozen. One warm-up repetition is not reported; then `--reps`
(default 15) repetitions. A ratio is protected over unprotected time of one repetition.

Prints medians and min-max; see docs/reference/benchmarks.md.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from eventsource import personal as pii  # noqa: E402
from run import PG_URL, es, open_store  # noqa: E402

SUBJECTS = [f"customer-{n}" for n in range(100)]
STREAM = 1_000


@es.register_event
class CustomerNoted(es.DomainEvent):
    """Two marked fields (name, email) of the customer in `customer_id`."""

    event_type: str = "BenchCustomerNoted"
    aggregate_type: str = "BenchCustomer"
    customer_id: Annotated[str, pii.SubjectId()]
    name: Annotated[str, pii.Personal(replacement="[erased]")]
    email: Annotated[str, pii.Personal(replacement="")]
    note: str
    points: int


@es.register_event
class CustomerNotedPlain(es.DomainEvent):
    """The same fields, nothing marked: the unprotected path."""

    event_type: str = "BenchCustomerNotedPlain"
    aggregate_type: str = "BenchCustomer"
    customer_id: str
    name: str
    email: str
    note: str
    points: int


def make(cls: type[es.DomainEvent], aggregate_id: uuid.UUID, version: int, n: int) -> Any:
    return cls(
        aggregate_id=aggregate_id, aggregate_version=version,
        customer_id=SUBJECTS[n % len(SUBJECTS)], name=f"Customer Number {n}",
        email=f"customer{n}@example.com", note="a regular note of some length", points=n,
    )


def personal_for(store: Any, kek: Any = None, **options: Any) -> pii.PersonalData:
    kek = kek or pii.LocalKEK(pii.LocalKEK.generate(), "bench")
    database = getattr(store, "_database", None)
    key_store: Any = (
        pii.SQLiteKeyStore(database) if database is not None
        else pii.PostgreSQLKeyStore(store.session_factory.kw["bind"])
    )
    return pii.PersonalData(key_store, kek, cache_ttl=3600, **options)


async def timed(work: Callable[[], Awaitable[None]]) -> float:
    """One timing: garbage collected and the survivors frozen first, so a collection of the
    setup's objects does not land in one side of a pair at random."""
    gc.collect()
    gc.freeze()
    try:
        started = time.perf_counter()
        await work()
        return time.perf_counter() - started
    finally:
        gc.unfreeze()


async def paired(
    plain: Callable[[], Awaitable[float]],
    protected: Callable[[], Awaitable[float]],
    rounds: int,
    rep: int,
) -> tuple[float, float]:
    """Totals of `rounds` alternating runs of each side, the side going first alternating
    too: a slow moment of the disk or of another process lands on both sides alike."""
    totals = [0.0, 0.0]
    sides = (plain, protected)
    for n in range(rounds):
        for side in ((0, 1) if (n + rep) % 2 == 0 else (1, 0)):
            totals[side] += await sides[side]()
    return totals[0], totals[1]


async def single_appends(store: Any, count: int, rep: int) -> tuple[float, float]:
    """`count` single-event appends of each side, alternating append by append (a commit's
    time varies with the disk far more than sealing costs): the totals (plain, protected)."""
    plain = [make(CustomerNotedPlain, uuid.uuid4(), 1, n) for n in range(count)]
    protected = [make(CustomerNoted, uuid.uuid4(), 1, n) for n in range(count)]
    totals = [0.0, 0.0]
    clock = time.perf_counter

    async def work() -> None:
        for n in range(count):
            for side in ((0, 1) if (n + rep) % 2 == 0 else (1, 0)):
                event = (plain, protected)[side][n]
                started = clock()
                await store.append_events(event.aggregate_id, "BenchCustomer", [event], 0)
                totals[side] += clock() - started

    await timed(work)
    return totals[0], totals[1]


async def batch_appends(store: Any, cls: type[es.DomainEvent], batches: int) -> float:
    streams = [uuid.uuid4() for _ in range(batches)]
    events = [[make(cls, s, v + 1, v) for v in range(100)] for s in streams]

    async def work() -> None:
        for stream, batch in zip(streams, events, strict=True):
            await store.append_events(stream, "BenchCustomer", batch, 0)

    return await timed(work)


async def stream_of(store: Any, cls: type[es.DomainEvent]) -> uuid.UUID:
    stream = uuid.uuid4()
    for start in range(0, STREAM, 100):
        batch = [make(cls, stream, v + 1, v) for v in range(start, start + 100)]
        await store.append_events(stream, "BenchCustomer", batch, start)
    return stream


async def loads(store: Any, stream: uuid.UUID, times: int) -> float:
    async def work() -> None:
        for _ in range(times):
            found = await store.get_events(stream, "BenchCustomer")
            assert len(found.events) == STREAM

    return await timed(work)


async def forget_time(store: Any, personal: pii.PersonalData, events: int) -> float:
    subject = f"forgotten-{uuid.uuid4().hex[:8]}"
    stream = uuid.uuid4()
    for start in range(0, events, 500):
        batch = [
            make(CustomerNoted, stream, v + 1, v).model_copy(update={"customer_id": subject})
            for v in range(start, min(events, start + 500))
        ]
        await store.append_events(stream, "BenchCustomer", batch, start)

    async def work() -> None:
        await personal.forget(subject, store)

    return await timed(work)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def main(backend: str, reps: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    async with open_store(backend, PG_URL) as store:
        personal = personal_for(store)
        personal.attach(store)
        warm = uuid.uuid4()  # every subject's keys exist and are cached
        await store.append_events(
            warm, "BenchCustomer", [make(CustomerNoted, warm, n + 1, n) for n in range(100)], 0
        )
        protected_stream = await stream_of(store, CustomerNoted)
        plain_stream = await stream_of(store, CustomerNotedPlain)
        cold = personal_for(store, personal._kek, opened_payloads=0)
        cold.attach(store)
        await loads(store, protected_stream, 1)
        personal.attach(store)
        await loads(store, protected_stream, 1)
        await loads(store, plain_stream, 1)
        for rep in range(-1, reps):  # repetition -1 warms up and is not reported
            a1 = await single_appends(store, 1000, rep)
            add("A1 plain", a1[0])
            add("A1 protected", a1[1])
            a2 = await paired(
                lambda: batch_appends(store, CustomerNotedPlain, 4),
                lambda: batch_appends(store, CustomerNoted, 4), 5, rep,
            )
            add("A2 plain", a2[0])
            add("A2 protected", a2[1])
            r1 = await paired(
                lambda: loads(store, plain_stream, 1),
                lambda: loads(store, protected_stream, 1), 10, rep,
            )
            add("R1 plain", r1[0])
            add("R1 protected", r1[1])
            cold.attach(store)  # no opened-payload cache: every read opens every field
            add("R1c protected", await loads(store, protected_stream, 10))
            personal.attach(store)
            add("F1 5000 events", await forget_time(store, personal, 5000))
            add("F1 1 event", await forget_time(store, personal, 1))
        await personal.close()
        await cold.close()
    results = {name: values[1:] for name, values in results.items()}  # not the warm-up
    report: dict[str, Any] = {name: summary(values) for name, values in results.items()}
    for workload, plain in (("A1", "A1"), ("A2", "A2"), ("R1", "R1"), ("R1c", "R1")):
        ratios = [
            p / u for p, u in zip(results[f"{workload} protected"], results[f"{plain} plain"],
                                  strict=True)
        ]
        report[f"{workload} ratio"] = summary(ratios)
    return report


TARGETS = {"A1 ratio": 1.15, "R1 ratio": 1.2, "F1 5000 events": 0.050, "F1 1 event": 0.050}


def show(backend: str, report: dict[str, Any]) -> None:
    print(f"personal data, backend {backend}")
    print(f"{'workload':<18} {'median':>10} {'min':>10} {'max':>10}  target")
    for name, values in report.items():
        unit = "x" if "ratio" in name else "s"
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"<= {target}{unit} " + ("ok" if values["median"] <= target else "ABOVE")
        print(
            f"{name:<18} {values['median']:>9.4f}{unit} {values['min']:>9.4f}{unit} "
            f"{values['max']:>9.4f}{unit}  {verdict}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    outcome = asyncio.run(main(args.backend, args.reps))
    if args.json:
        print(json.dumps(outcome, indent=2))
    else:
        show(args.backend, outcome)
