"""Fault injection against the real RabbitMQ (issue 6, acceptance 2): connections dropped in
the middle of a 10,000-event stream, and a consumer process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import pytest
from rabbitmq_bus_helpers import CuttableProxy, rabbitmq_buses, via

from brokers import require_rabbitmq
from eventsource.testing.contract.bus import ContractPing, consuming, eventually

HERE = Path(__file__).parent


async def _cut_repeatedly(proxy: CuttableProxy, stop: asyncio.Event, every: float) -> int:
    """Drop every connection through the proxy until `stop`; count the rounds that cut some."""
    rounds = 0
    while not stop.is_set():
        await asyncio.sleep(every)
        if proxy.cut():
            rounds += 1
    return rounds


@pytest.mark.slow
async def test_dropped_connections_lose_no_event() -> None:
    broker = require_rabbitmq()
    target = urlsplit(broker)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5672)
    port = await proxy.start()
    total = 10_000
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(total)]
    seen: set[UUID] = set()
    try:
        async with rabbitmq_buses(via(broker, port)) as buses:
            consumers = [await buses.open(consumer_name=f"c{i}") for i in range(2)]
            for consumer in consumers:
                consumer.subscribe(ContractPing, lambda e: seen.add(e.event_id))
            publisher = await buses.open(consumer_name="publisher")
            stop = asyncio.Event()
            async with consuming(consumers[0]), consuming(consumers[1]):
                cutter = asyncio.create_task(_cut_repeatedly(proxy, stop, every=0.4))
                for start in range(0, total, 250):
                    await publisher.publish(events[start : start + 250])
                    await asyncio.sleep(0.01)  # spread publishing over several cuts
                await eventually(lambda: len(seen) >= total // 2, "half the events", timeout=60)
                stop.set()
                rounds = await cutter
                await eventually(lambda: len(seen) == total, "every event despite the cuts", 90)
            assert rounds >= 3
            assert seen == {e.event_id for e in events}
            assert publisher.stats.events_published >= total
            reconnections = sum(bus.stats.reconnections for bus in (publisher, *consumers))
            assert reconnections > 0, "the connections really were dropped"
    finally:
        await proxy.close()


@pytest.mark.slow
async def test_sigkilled_consumer_leaves_its_messages_to_the_group(tmp_path: Path) -> None:
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(300)]
    record = tmp_path / "processed.txt"
    record.touch()
    async with rabbitmq_buses() as buses:
        rescuer = await buses.open(consumer_name="rescuer")
        await rescuer.bind_routing_key("#")  # the group's queue exists before publishing
        await rescuer.publish(events)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen(  # noqa: ASYNC220 - a real process, killed below
            [
                sys.executable,
                str(HERE / "rabbitmq_killable_consumer.py"),
                buses.url,
                buses.exchange,
                str(record),
            ],
            env=env,
        )
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while len(record.read_text().split()) < 20:
                assert child.poll() is None, "the consumer process died by itself"
                assert asyncio.get_running_loop().time() < deadline, "the consumer never started"
                await asyncio.sleep(0.02)
            in_flight = await rescuer.get_queue_info()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        done_by_child = {UUID(line) for line in record.read_text().split()}
        assert len(done_by_child) < len(events), "killed mid-stream"
        assert in_flight.message_count + len(done_by_child) < len(events), "some were unacked"
        # The broker returns the dead consumer's unacked messages to the queue.
        deadline = asyncio.get_running_loop().time() + 20
        while (await rescuer.get_queue_info()).message_count <= in_flight.message_count:
            assert asyncio.get_running_loop().time() < deadline, "nothing returned to the queue"
            await asyncio.sleep(0.05)
        seen: set[UUID] = set()
        rescuer.subscribe(ContractPing, lambda e: seen.add(e.event_id))
        async with consuming(rescuer):
            await eventually(
                lambda: done_by_child | seen == {e.event_id for e in events}, "every event"
            )
        assert seen - done_by_child
