"""Benchmark the distributed event buses on real brokers (loopback) through their public API.

    .venv/bin/python benchmarks/buses.py --bus redis|rabbitmq|nats|kafka|all
                                         [--events N] [--consumers 1,4] [--json]

Per bus, each phase on its own fresh stream/exchange/subject names, all deleted afterwards:

P1  one-event publishes: `await bus.publish([event])`, one after the other, events/s.
PB  batched publishes: `await bus.publish(chunk)` for chunks of `--chunk` events, events/s.
C1, C4 ...  consume the PB backlog with 1 (4, ...) consumers of ONE consumer group, each in a
    process of its own; from the signal to start until every event id has been handled at least
    once, events/s; events handled twice are reported as duplicates.
L   end-to-end latency: one consumer, one-event publishes at a steady `--rate`; per event the
    handler's `time.time()` minus the publisher's just before `publish`; p50/p99/max.

Kafka runs only when EVENTSOURCE_TEST_KAFKA_BOOTSTRAP names a reachable broker. See
benchmarks/README.md for the targets and how to read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parent.parent / "src"
if (_SRC / "eventsource").is_dir():
    sys.path.insert(0, str(_SRC))

import eventsource as es  # noqa: E402  (after the sys.path line, on purpose)

REDIS_URL = os.environ.get("EVENTSOURCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("EVENTSOURCE_TEST_NATS_URL", "nats://127.0.0.1:4222")
RABBITMQ_URL = os.environ.get("EVENTSOURCE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
KAFKA_VAR = "EVENTSOURCE_TEST_KAFKA_BOOTSTRAP"
BUSES = ("redis", "nats", "rabbitmq", "kafka")
TARGETS = {"redis": 15_000.0, "nats": 10_000.0, "rabbitmq": 5_000.0}  # published and consumed
AGGREGATES = 100  # events round-robin over this many aggregates (Kafka partitions by them)
NAMES = (
    "Widget deluxe edition, colour blue, size M.",
    "Gadget standard edition, colour red, size L",
    "Sprocket compact edition, colour green, S..",
    "Doohickey premium edition, colour black, XL",
)


@es.register_event
class BenchBusEvent(es.DomainEvent):
    """`seq` identifies the event in the run; `sent_at` is the publisher's clock (latency)."""

    event_type: str = "BenchBusEvent"
    aggregate_type: str = "BenchBus"
    seq: int
    sent_at: float = 0.0
    name: str
    amount: Decimal
    sku: str
    quantity: int


def make_events(count: int) -> list[BenchBusEvent]:
    aggregates = [uuid.uuid4() for _ in range(AGGREGATES)]
    return [
        BenchBusEvent(
            aggregate_id=aggregates[i % AGGREGATES],
            aggregate_version=i // AGGREGATES + 1,
            seq=i,
            name=NAMES[i % 4],
            amount=Decimal(f"{i * 37 % 100_000}.{i % 100:02d}"),
            sku=f"SKU-{i:08d}",
            quantity=i % 17 + 1,
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------- one adapter per bus


class Broker:
    """How the benchmark names, builds and cleans up one broker's buses."""

    name = ""

    def __init__(self) -> None:
        self.namespaces: list[str] = []

    def namespace(self) -> str:
        """A fresh stream/exchange/subject name, remembered for `cleanup`."""
        name = f"bench{uuid.uuid4().hex[:10]}"
        self.namespaces.append(name)
        return name

    def problem(self) -> str | None:
        """Why this broker cannot be benchmarked, or None."""
        return None

    def config(self, namespace: str, group: str) -> Any:
        raise NotImplementedError

    async def prepare(self, namespace: str) -> None:
        """Anything the namespace needs before its first bus (Kafka: the topic)."""

    async def cleanup(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def make_bus(bus: str, config: Any) -> Any:
    if bus == "redis":
        from eventsource.bus.redis import RedisEventBus

        return RedisEventBus(config)
    if bus == "nats":
        from eventsource.bus.nats import NATSEventBus

        return NATSEventBus(config)
    if bus == "rabbitmq":
        from eventsource.bus.rabbitmq import RabbitMQEventBus

        return RabbitMQEventBus(config)
    from eventsource.bus.kafka import KafkaEventBus

    return KafkaEventBus(config)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class RedisBroker(Broker):
    name = "redis"

    def config(self, namespace: str, group: str) -> Any:
        from eventsource.bus.redis import RedisEventBusConfig

        return RedisEventBusConfig(
            redis_url=REDIS_URL, stream_prefix=namespace, consumer_group=group
        )

    def describe(self) -> str:
        return f"RedisEventBusConfig defaults at {REDIS_URL}"

    async def cleanup(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            for namespace in self.namespaces:
                keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
                if keys:
                    await client.delete(*keys)
        finally:
            await client.aclose()


class NATSBroker(Broker):
    name = "nats"

    def config(self, namespace: str, group: str) -> Any:
        from eventsource.bus.nats import NATSEventBusConfig

        return NATSEventBusConfig(servers=NATS_URL, subject_prefix=namespace, consumer_group=group)

    def describe(self) -> str:
        return f"NATSEventBusConfig defaults (file storage) at {NATS_URL}"

    async def cleanup(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        client = await nats.connect(NATS_URL)
        try:
            for namespace in self.namespaces:
                config = self.config(namespace, "cleanup")
                for stream in (config.stream_name, config.dlq_stream_name):
                    with contextlib.suppress(NotFoundError):
                        await client.jetstream().delete_stream(stream)
        finally:
            await client.close()


class RabbitMQBroker(Broker):
    name = "rabbitmq"

    def __init__(self) -> None:
        super().__init__()
        self.queues: set[str] = set()

    def config(self, namespace: str, group: str) -> Any:
        from eventsource.bus.rabbitmq import RabbitMQEventBusConfig

        config = RabbitMQEventBusConfig(
            rabbitmq_url=RABBITMQ_URL, exchange_name=namespace, consumer_group=group
        )
        self.queues.add(config.queue_name)
        return config

    def describe(self) -> str:
        return f"RabbitMQEventBusConfig defaults (durable, persistent) at {RABBITMQ_URL}"

    async def cleanup(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(RABBITMQ_URL)
        try:
            channel = await connection.channel()
            for queue in self.queues:
                for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
                    await channel.queue_delete(name)
            for namespace in self.namespaces:
                for name in (namespace, f"{namespace}_dlq"):
                    await channel.exchange_delete(name)
        finally:
            await connection.close()


class KafkaBroker(Broker):
    name = "kafka"

    def __init__(self) -> None:
        super().__init__()
        self.bootstrap = os.environ.get(KAFKA_VAR, "")

    def problem(self) -> str | None:
        skipped = f"skipped: no broker (set {KAFKA_VAR})"
        if not self.bootstrap:
            return skipped
        host, _, port = self.bootstrap.split(",")[0].rpartition(":")
        if not _reachable(host or "localhost", int(port or 9092)):
            return f"{skipped}: {self.bootstrap} is not reachable"
        return None

    def config(self, namespace: str, group: str) -> Any:
        from eventsource.bus.kafka import KafkaEventBusConfig

        return KafkaEventBusConfig(
            bootstrap_servers=self.bootstrap,
            topic_prefix=namespace,
            consumer_group=f"{namespace}-{group}",
        )

    def describe(self) -> str:
        return f"KafkaEventBusConfig defaults at {self.bootstrap}, topics of 4 partitions"

    async def prepare(self, namespace: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        config = self.config(namespace, "prepare")
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(config.topic_name, 4, 1), NewTopic(config.dlq_topic_name, 1, 1)]
            )
        finally:
            await admin.close()

    async def cleanup(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            topics = []
            for namespace in self.namespaces:
                config = self.config(namespace, "cleanup")
                topics += [config.topic_name, config.dlq_topic_name]
            await admin.delete_topics(topics)
        finally:
            await admin.close()


BROKERS: dict[str, Callable[[], Broker]] = {
    "redis": RedisBroker,
    "nats": NATSBroker,
    "rabbitmq": RabbitMQBroker,
    "kafka": KafkaBroker,
}


# --------------------------------------------------------------------------- consumer processes


@dataclass
class Shared:
    """What the parent and its consumer processes share."""

    seen: Any  # one byte per seq: handled at least once
    counts: Any  # per consumer: events handled (duplicates included)
    ready: Any
    go: Any
    consuming: Any
    stop: Any
    results: Any


def consumer_process(bus: str, config: Any, mode: str, slot: int, shared: Shared) -> None:
    asyncio.run(_consume(bus, config, mode, slot, shared))


async def _consume(bus_name: str, config: Any, mode: str, slot: int, shared: Shared) -> None:
    bus = make_bus(bus_name, config)
    await bus.connect()
    seen, counts = shared.seen, shared.counts
    handled = 0
    latencies: list[float] = []

    async def count(event: BenchBusEvent) -> None:
        nonlocal handled
        seen[event.seq] = 1
        handled += 1
        counts[slot] = handled

    async def clock(event: BenchBusEvent) -> None:
        latencies.append(time.time() - event.sent_at)
        counts[slot] = len(latencies)

    bus.subscribe(BenchBusEvent, count if mode == "count" else clock)
    shared.ready.release()
    await asyncio.to_thread(shared.go.wait)
    task = asyncio.create_task(bus.start_consuming())
    await bus.wait_until_consuming()
    shared.consuming.release()
    await asyncio.to_thread(shared.stop.wait)
    await bus.shutdown(timeout=30)
    await asyncio.gather(task, return_exceptions=True)
    shared.results.put((slot, handled, latencies, bus.get_stats_dict()))


@contextlib.asynccontextmanager
async def consumers(
    bus: str, configs: list[Any], mode: str, seen_size: int
) -> AsyncIterator[tuple[Shared, list[Any]]]:
    """Consumer processes, built and connected, waiting for `shared.go`; stopped on exit."""
    ctx = multiprocessing.get_context("spawn")
    shared = Shared(
        seen=ctx.Array("B", max(seen_size, 1), lock=False),
        counts=ctx.Array("q", len(configs), lock=False),
        ready=ctx.Semaphore(0),
        go=ctx.Event(),
        consuming=ctx.Semaphore(0),
        stop=ctx.Event(),
        results=ctx.Queue(),
    )
    processes = [
        ctx.Process(target=consumer_process, args=(bus, config, mode, slot, shared), daemon=True)
        for slot, config in enumerate(configs)
    ]
    for process in processes:
        process.start()
    results: list[Any] = []
    try:
        for _ in processes:
            await _acquire(shared.ready, processes)
        yield shared, results
    finally:
        shared.go.set()
        shared.stop.set()
        for _ in processes:
            with contextlib.suppress(Exception):
                results.append(await asyncio.to_thread(shared.results.get, True, 60))
        for process in processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()


async def _acquire(semaphore: Any, processes: list[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(semaphore.acquire, True, 0.5):
        if any(p.exitcode not in (None, 0) for p in processes):
            raise RuntimeError("a consumer process died (see its traceback above)")
        if time.monotonic() > deadline:
            raise TimeoutError("consumer processes did not get ready")


# --------------------------------------------------------------------------- phases


@dataclass
class Report:
    bus: str
    setup: str = ""
    skipped: str | None = None
    rates: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)


async def prepare_group(broker: Broker, namespace: str, group: str) -> None:
    """Create the group (queue, durable consumer, stream group) before anything is published, as
    a deployed consumer would have: start consuming, then stop at once."""
    bus = make_bus(broker.name, broker.config(namespace, group))
    await bus.connect()
    task = asyncio.create_task(bus.start_consuming())
    await bus.wait_until_consuming()
    await bus.shutdown(timeout=30)
    await task


async def publish_single(broker: Broker, count: int) -> float:
    namespace = broker.namespace()
    await broker.prepare(namespace)
    await prepare_group(broker, namespace, "single")
    events = make_events(count)
    bus = make_bus(broker.name, broker.config(namespace, "publisher"))
    await bus.connect()
    try:
        start = time.perf_counter()
        for event in events:
            await bus.publish([event])
        return count / (time.perf_counter() - start)
    finally:
        await bus.shutdown(timeout=30)


async def publish_batched(broker: Broker, namespace: str, events: list[Any], chunk: int) -> float:
    bus = make_bus(broker.name, broker.config(namespace, "publisher"))
    await bus.connect()
    try:
        start = time.perf_counter()
        for first in range(0, len(events), chunk):
            await bus.publish(events[first : first + chunk])
        return len(events) / (time.perf_counter() - start)
    finally:
        await bus.shutdown(timeout=30)


async def consume(
    broker: Broker, namespace: str, group: str, consumers_count: int, total: int
) -> tuple[float | None, str]:
    """Events/s until every seq was handled at least once by the group's consumers."""
    configs = [broker.config(namespace, group) for _ in range(consumers_count)]
    async with consumers(broker.name, configs, "count", total) as (shared, results):
        timeout = max(60.0, total / 200)
        start = time.perf_counter()
        shared.go.set()
        done = 0
        while time.perf_counter() - start < timeout:
            if sum(shared.counts) >= total:
                done = bytes(shared.seen).count(1)
                if done == total:
                    break
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - start
    handled = sum(result[1] for result in results)
    per_consumer = "/".join(str(result[1]) for result in sorted(results))
    note = f"{handled - done} duplicates"
    if consumers_count > 1:
        note += f", split {per_consumer}"
    if done < total:
        return None, f"INCOMPLETE: {done}/{total} after {elapsed:.0f} s; {note}"
    return total / elapsed, note


async def latency(broker: Broker, count: int, rate: float) -> tuple[dict[str, float], str]:
    namespace = broker.namespace()
    await broker.prepare(namespace)
    config = broker.config(namespace, "latency")
    async with consumers(broker.name, [config], "latency", 0) as (shared, results):
        shared.go.set()
        await _acquire(shared.consuming, [])
        bus = make_bus(broker.name, broker.config(namespace, "publisher"))
        await bus.connect()
        template = make_events(count)
        try:
            start = time.perf_counter()
            for i, event in enumerate(template):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await bus.publish([event.model_copy(update={"sent_at": time.time()})])
            achieved = count / (time.perf_counter() - start)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and shared.counts[0] < count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # a counter in another process: nothing to wait on
        finally:
            await bus.shutdown(timeout=30)
    samples = sorted(ms * 1000 for result in results for ms in result[2])
    if not samples:
        return {}, "no events arrived"
    quantiles = statistics.quantiles(samples, n=100, method="inclusive")
    stats = {"p50": quantiles[49], "p99": quantiles[98], "max": samples[-1]}
    return stats, f"{len(samples)}/{count} events at {achieved:,.0f}/s"


async def bench_bus(name: str, args: argparse.Namespace) -> Report:
    broker = BROKERS[name]()
    report = Report(name)
    if (problem := broker.problem()) is not None:
        report.skipped = problem
        return report
    report.setup = broker.describe()
    try:
        report.rates["P1"] = await publish_single(broker, args.single)
        namespace = broker.namespace()
        await broker.prepare(namespace)
        groups = {n: f"c{n}" for n in args.consumers}
        for group in groups.values():
            await prepare_group(broker, namespace, group)
        events = make_events(args.events)
        report.rates["PB"] = await publish_batched(broker, namespace, events, args.chunk)
        for n, group in groups.items():
            rate, note = await consume(broker, namespace, group, n, args.events)
            if rate is not None:
                report.rates[f"C{n}"] = rate
            report.notes[f"C{n}"] = note
        report.latency_ms, report.notes["L"] = await latency(broker, args.latency_events, args.rate)
    finally:
        try:
            await broker.cleanup()
        except Exception as exc:  # reported, but not in place of the run's own error
            print(f"   {name}: cleanup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return report


# --------------------------------------------------------------------------- output


def _rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    rows = [("P1", f"publish, one event per call ({args.single:,} events)")]
    rows.append(("PB", f"publish, {args.chunk} events per call ({args.events:,} events)"))
    rows += [
        (f"C{n}", f"consume, {n} consumer{'s' * (n > 1)} in one group") for n in args.consumers
    ]
    return rows


def print_reports(runs: list[Report], args: argparse.Namespace) -> None:
    """One bus: the best of the runs, the spread (min-max) and the notes of the best run."""
    first = runs[0]
    print(f"\n== {first.bus}")
    if first.skipped:
        print(f"   {first.skipped}")
        return
    print(f"   {first.setup}; {len(runs)} run{'s' * (len(runs) > 1)}, loads {_loads(runs)}")
    target = TARGETS.get(first.bus)
    for key, what in _rows(args):
        rates = [run.rates[key] for run in runs if key in run.rates]
        if not rates:
            notes = "; ".join(run.notes.get(key, "not measured") for run in runs)
            print(f"   {key:<3} {what:<46}{'-':>10} events/s  ({notes})")
            continue
        best = max(rates)
        spread = f"  {min(rates):,.0f}-{best:,.0f}" if len(runs) > 1 else ""
        mark = ""
        if target is not None and key != "P1":
            mark = f"  [{'ok' if best >= target else 'BELOW'} >= {target:,.0f}]"
        best_run = next(run for run in runs if run.rates.get(key) == best)
        note = f"  ({best_run.notes[key]})" if key in best_run.notes else ""
        print(f"   {key:<3} {what:<46}{best:>10,.0f} events/s{spread}{mark}{note}")
    measured = [run for run in runs if run.latency_ms]
    if not measured:
        print(f"   L   latency: {first.notes.get('L', 'not measured')}")
        return
    best_run = min(measured, key=lambda run: run.latency_ms["p99"])
    lat = best_run.latency_ms
    line = (
        f"   L   latency at {args.rate:,.0f} events/s: p50 {lat['p50']:.2f} ms, "
        f"p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms  ({best_run.notes['L']})"
    )
    if len(measured) > 1:
        p50 = [run.latency_ms["p50"] for run in measured]
        p99 = [run.latency_ms["p99"] for run in measured]
        line += f"; spread p50 {min(p50):.2f}-{max(p50):.2f}, p99 {min(p99):.2f}-{max(p99):.2f} ms"
    print(line)


def _loads(runs: list[Report]) -> str:
    return "/".join(run.notes.get("load", "?") for run in runs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bus", default="all", choices=[*BUSES, "all"])
    parser.add_argument("--events", type=int, default=10_000, help="events per PB/C run")
    parser.add_argument("--consumers", default="1,4", help="consumer counts, comma-separated")
    parser.add_argument("--chunk", type=int, default=100, help="events per batched publish call")
    parser.add_argument("--single", type=int, default=2_000, help="events for P1")
    parser.add_argument("--rate", type=float, default=500.0, help="latency publishing rate/s")
    parser.add_argument("--latency-events", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per bus: best and spread")
    parser.add_argument("--json", action="store_true", help="also print every run as JSON")
    args = parser.parse_args(argv)
    args.consumers = [int(n) for n in args.consumers.split(",") if n.strip()]
    sizes = (args.events, args.chunk, args.single, args.latency_events, args.repeat, args.rate)
    if min(sizes) <= 0 or not args.consumers or min(args.consumers) < 1:
        parser.error("sizes, --rate, --repeat and --consumers must be positive")
    return args


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = BUSES if args.bus == "all" else (args.bus,)
    print(
        f"eventsource from {Path(es.__file__).parent}; Python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
    )
    everything: list[Report] = []
    failed = False
    for name in names:
        runs: list[Report] = []
        for _ in range(args.repeat):
            load = f"{os.getloadavg()[0]:.1f}"
            try:
                report = await bench_bus(name, args)
            except Exception as exc:  # one broker's failure does not hide the others' numbers
                report = Report(name, skipped=f"FAILED: {type(exc).__name__}: {exc}")
                failed = True
            report.notes["load"] = load
            runs.append(report)
            if report.skipped:
                break
        everything += runs
        print_reports(runs, args)
    if args.json:
        print(json.dumps([vars(report) for report in everything], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
