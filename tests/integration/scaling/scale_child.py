"""One worker process of a partitioned subscription (tests and `scale_out.py` start several).

    python tests/integration/scaling/scale_child.py prepare BACKEND LOCATION
    python tests/integration/scaling/scale_child.py work BACKEND LOCATION [options]

BACKEND is "postgresql" (LOCATION = "url schema") or "sqlite" (LOCATION = database file).
`prepare` creates the event store's tables and the read model; `work` runs a
`PartitionedWorker` whose transactional handler writes one `scale_audit` row per event
(UNIQUE event_id), with the stream position the stream was at before (`prev`), so a test can
check per-stream order and contiguity. SIGTERM stops the worker cleanly (releasing its
partitions); the worker prints `LEASE_LOST <partitions>` to stderr when fencing refuses a page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from eventsource.events.base import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.scaling import LeaseLost, PartitionedWorker
from eventsource.stores.interface import EventStore, StoredEvent

READ_MODEL = (
    "CREATE TABLE IF NOT EXISTS scale_audit (event_id TEXT NOT NULL UNIQUE, "
    "aggregate_id TEXT NOT NULL, stream_position INT NOT NULL, prev INT NOT NULL, "
    "worker TEXT NOT NULL, delivered_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scale_streams (aggregate_id TEXT PRIMARY KEY, "
    "last_position INT NOT NULL)",
)
_AUDIT = text(
    "INSERT INTO scale_audit (event_id, aggregate_id, stream_position, prev, worker, "
    "delivered_at) VALUES (:e, :a, :n, :prev, :w, :t)"
)
_STREAM = text(
    "INSERT INTO scale_streams (aggregate_id, last_position) VALUES (:a, :n) "
    "ON CONFLICT (aggregate_id) DO UPDATE SET last_position = excluded.last_position"
)


class Tick(DomainEvent):
    """The events the tests and the benchmark append."""

    event_type: str = "ScaleTick"
    aggregate_type: str = "ScaleStream"
    n: int


def register() -> None:
    if default_registry.get_or_none("ScaleTick") is None:
        default_registry.register(Tick)


def engine_for(backend: str, location: str) -> AsyncEngine:
    if backend == "postgresql":
        url, schema = location.split()
        return create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=10,
            connect_args={"server_settings": {"search_path": schema}},
        )
    return create_async_engine(f"sqlite+aiosqlite:///{location}",
                               connect_args={"timeout": 60})


@contextlib.asynccontextmanager
async def open_store(backend: str, location: str) -> AsyncIterator[tuple[EventStore, AsyncEngine]]:
    """The event store and an engine on the same database."""
    register()
    engine = engine_for(backend, location)
    try:
        if backend == "postgresql":
            from sqlalchemy.ext.asyncio import async_sessionmaker

            from eventsource.stores.postgresql import PostgreSQLEventStore

            yield PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False), engine
        else:
            from eventsource.stores.sqlite import SQLiteEventStore

            async with SQLiteEventStore(location, busy_timeout=60_000) as store:
                yield store, engine
    finally:
        await engine.dispose()


async def prepare(backend: str, location: str) -> None:
    """Create the store's tables and the read model."""
    async with open_store(backend, location) as (store, engine):
        await store.initialize()  # type: ignore[attr-defined]
        async with engine.begin() as conn:
            for ddl in READ_MODEL:
                await conn.execute(text(ddl))


class Audit:
    """The transactional handler: one audit row per event, checking each stream's order."""

    def __init__(self, worker: str, io_ms: float, hold_file: str | None, hold_after: int):
        self.worker = worker
        self.io = io_ms / 1000
        self.hold_file = hold_file
        self.hold_after = hold_after
        self.pages = 0

    async def __call__(self, conn: Any, events: Sequence[StoredEvent]) -> None:
        if self.io:
            await asyncio.sleep(self.io * len(events))  # the simulated I/O, one call per event
        now = time.time()
        streams = sorted({str(s.aggregate_id) for s in events})
        params = {f"a{i}": a for i, a in enumerate(streams)}
        marks = ", ".join(f":{k}" for k in params)
        last = dict((await conn.execute(text(
            f"SELECT aggregate_id, last_position FROM scale_streams WHERE aggregate_id IN ({marks})"
        ), params)).all())
        audit = []
        for s in events:
            a = str(s.aggregate_id)
            audit.append({"e": str(s.event_id), "a": a, "n": s.stream_position,
                          "prev": last.get(a, 0), "w": self.worker, "t": now})
            last[a] = s.stream_position
        await conn.execute(_AUDIT, audit)
        await conn.execute(_STREAM, [{"a": a, "n": last[a]} for a in streams])
        self.pages += 1
        if self.hold_file and self.pages == self.hold_after:
            ids = "\n".join(str(s.event_id) for s in events)
            await asyncio.to_thread(Path(self.hold_file).write_text, ids)
            await asyncio.sleep(float(os.environ.get("SCALE_HOLD_SECONDS", "4")))


async def work(args: argparse.Namespace) -> None:
    async with open_store(args.backend, args.location) as (store, engine):
        handler = Audit(args.worker, args.io_ms, args.hold_file, args.hold_after)
        worker = PartitionedWorker(
            store, engine, args.name, handler, partitions=args.partitions,
            lease_ttl=args.ttl, heartbeat=args.heartbeat, batch_size=args.batch,
            concurrency=args.concurrency,
            worker_id=args.worker, handler_name=args.handler_name,
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await worker.start()
        except Exception as exc:
            print(f"CONFIG_ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(3) from exc
        print("STARTED", flush=True)
        lost = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await stop.wait()
            if worker.leases_lost != lost and isinstance(worker.last_error, LeaseLost):
                lost = worker.leases_lost
                print(f"LEASE_LOST {worker.last_error.partitions}", file=sys.stderr, flush=True)
        await worker.stop()
        print(f"STOPPED {worker.events_delivered}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["prepare", "work"])
    parser.add_argument("backend", choices=["postgresql", "sqlite"])
    parser.add_argument("location")
    parser.add_argument("--name", default="audit")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--io-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--worker", default=f"w{os.getpid()}")
    parser.add_argument("--handler-name", default="scale_child.Audit")
    parser.add_argument("--hold-file")
    parser.add_argument("--hold-after", type=int, default=0)
    args = parser.parse_args()
    if args.command == "prepare":
        asyncio.run(prepare(args.backend, args.location))
    else:
        asyncio.run(work(args))


if __name__ == "__main__":
    main()
