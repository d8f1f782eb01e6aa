"""Benchmark personal data: what sealing two marked fields costs appends and reads, and forget.

    .venv/bin/python benchmarks/personal_data.py --backend sqlite|postgres [--reps N] [--json]

One store (opened as `run.py` opens it: a fresh file or schema) with a `PersonalData` attached
whose key store lives in the same database. Two event classes with the same fields, one with
two fields marked `Personal` (and a `SubjectId`), one without markers; 100 subjects, their keys
created before timing (a warm key cache). Interleaved repetitions, same run:

* A1: single-event appends (`append_events` of one event, as an aggregate save does),
  1,000 per repetition, protected vs unprotected: ratio target <= 1.15.
* A2: 100-event batch appends, 20 batches per repetition (informational).
* R1: `get_events` of a 1,000-event stream, 5 loads per repetition: ratio target <= 1.2.
  R1c: the same with the opened-payload cache off (`opened_payloads=0`): every read parses
  and decrypts every marked field (informational).
* F1: `forget` of a subject that has 5,000 events (keys deleted, the erasure recorded, the
  `PersonalDataErased` event appended): target < 50 ms, and no slower than for a subject
  with 1 event.

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
    gc.collect()
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def single_appends(store: Any, cls: type[es.DomainEvent], count: int) -> float:
    streams = [uuid.uuid4() for _ in range(count)]
    events = [make(cls, stream, 1, n) for n, stream in enumerate(streams)]

    async def work() -> None:
        for stream, event in zip(streams, events, strict=True):
            await store.append_events(stream, "BenchCustomer", [event], 0)

    return await timed(work)


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
        for _ in range(reps):
            add("A1 plain", await single_appends(store, CustomerNotedPlain, 1000))
            add("A1 protected", await single_appends(store, CustomerNoted, 1000))
            add("A2 plain", await batch_appends(store, CustomerNotedPlain, 20))
            add("A2 protected", await batch_appends(store, CustomerNoted, 20))
            add("R1 plain", await loads(store, plain_stream, 5))
            add("R1 protected", await loads(store, protected_stream, 5))
            cold.attach(store)  # no opened-payload cache: every read opens every field
            add("R1c protected", await loads(store, protected_stream, 5))
            personal.attach(store)
            add("F1 5000 events", await forget_time(store, personal, 5000))
            add("F1 1 event", await forget_time(store, personal, 1))
        await personal.close()
        await cold.close()
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
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    outcome = asyncio.run(main(args.backend, args.reps))
    if args.json:
        print(json.dumps(outcome, indent=2))
    else:
        show(args.backend, outcome)
