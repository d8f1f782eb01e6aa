"""Fault injection against the real NATS server (issue 6, acceptance 2): every connection
dropped repeatedly in the middle of a 10,000-event stream, a consumer process killed with
SIGKILL, and connections the server closed for good (issue 12)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from nats_bus_helpers import Buses, DroppingProxy, make_the_server_close, nats_buses

from eventsource.exceptions import EventBusError
from eventsource.testing.contract.bus import ContractPing, consuming, eventually

HERE = Path(__file__).parent


@pytest.fixture
async def buses() -> AsyncIterator[Buses]:
    async with nats_buses() as opened:
        yield opened


async def _drop_repeatedly(
    proxy: DroppingProxy, seen: set[UUID], total: int, every: float
) -> list[int]:
    """Cut every connection each `every` seconds while events are under way; return how many
    had been processed at each cut."""
    progress: list[int] = []
    while len(seen) < total and len(progress) < 20:
        await asyncio.sleep(every)
        proxy.drop()
        progress.append(len(seen))
    return progress


@pytest.mark.slow
async def test_dropped_connections_lose_no_event(buses: Buses) -> None:
    total = 10_000
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(total)]
    seen: set[UUID] = set()
    proxy = DroppingProxy(buses.url)
    await proxy.start()
    try:
        # Streams and the durable consumer first, straight to the server.
        await (await buses.open()).publish([])
        through_proxy = {
            "servers": proxy.url,
            "reconnect_time_wait": 0.1,
            "publish_timeout": 1.0,
            "batch_size": 200,
        }
        consumers = [await buses.open(consumer_name=f"c{i}", **through_proxy) for i in range(2)]
        for consumer in consumers:
            consumer.subscribe(ContractPing, lambda e: seen.add(e.event_id))
        publisher = await buses.open(consumer_name="publisher", **through_proxy)
        async with consuming(consumers[0]), consuming(consumers[1]):
            dropper = asyncio.create_task(_drop_repeatedly(proxy, seen, total, every=0.15))
            for start in range(0, total, 250):
                await publisher.publish(events[start : start + 250])
                await asyncio.sleep(0.02)  # spread publishing over several drops
            progress = await dropper
            await eventually(lambda: len(seen) == total, "every event despite the drops", 90)
    finally:
        await proxy.stop()
    mid_stream = [count for count in progress if 0 < count < total]
    assert len(mid_stream) >= 3, f"drops in the middle of the stream: {progress}"
    assert seen == {e.event_id for e in events}
    assert publisher.stats.events_published == total
    reconnections = publisher.stats.reconnections + sum(c.stats.reconnections for c in consumers)
    assert reconnections >= 3, "the clients reconnected by themselves"
    info = await buses.opened[0].get_stream_info()
    assert info["stream"]["messages"] == total, "retried publishes were stored once"


@pytest.mark.slow
async def test_sigkilled_consumer_leaves_its_messages_to_the_group(
    buses: Buses, tmp_path: Path
) -> None:
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(300)]
    publisher = await buses.open(ack_wait=1.0)
    await publisher.publish(events)
    record = tmp_path / "processed.txt"
    record.touch()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(  # noqa: ASYNC220 - a real process, killed below
        [
            sys.executable,
            str(HERE / "nats_killable_consumer.py"),
            buses.url,
            buses.prefix,
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
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    done_by_child = {UUID(line) for line in record.read_text().split()}
    assert len(done_by_child) < len(events), "killed mid-stream"
    info = await publisher.get_stream_info()
    assert info["consumer_group"]["ack_pending"] > 0, "the dead consumer left unacked messages"

    seen: set[UUID] = set()
    rescuer = await buses.open(consumer_name="rescuer", ack_wait=1.0)
    rescuer.subscribe(ContractPing, lambda e: seen.add(e.event_id))
    async with consuming(rescuer):
        await eventually(
            lambda: done_by_child | seen == {e.event_id for e in events}, "every event"
        )
    assert rescuer.stats.messages_redelivered > 0, "the dead consumer's messages came back"


async def test_publishing_goes_on_after_the_server_closed_the_connection(buses: Buses) -> None:
    # Few attempts: a publish that cannot get through fails fast instead of retrying for long.
    bus = await buses.open(publish_attempts=2)
    await make_the_server_close(bus)
    for n in range(20):
        await bus.publish([ContractPing(aggregate_id=uuid4(), n=n)])
    assert bus.stats.events_published == 20
    assert bus.stats.reconnections == 1
    assert bus.is_connected
    info = await bus.get_stream_info()
    assert info["stream"]["messages"] == 20


async def test_consuming_goes_on_after_the_server_closed_the_connection(buses: Buses) -> None:
    seen: list[UUID] = []
    consumer = await buses.open()
    consumer.subscribe(ContractPing, lambda e: seen.append(e.event_id))
    publisher = await buses.open()
    async with consuming(consumer):
        await publisher.publish([ContractPing(aggregate_id=uuid4())])
        await eventually(lambda: len(seen) == 1, "the event before the close")
        await make_the_server_close(consumer)
        after = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(5)]
        await publisher.publish(after)
        await eventually(lambda: len(seen) == 6, "the events published after the close")
    assert seen[1:] == [e.event_id for e in after]
    assert consumer.stats.reconnections == 1


async def test_a_closed_connection_that_cannot_be_reopened_is_a_typed_error(
    buses: Buses,
) -> None:
    bus = await buses.open(publish_attempts=1, connect_timeout=0.5)
    await make_the_server_close(bus)
    bus.config.servers = "nats://127.0.0.1:1"  # and now no server is reachable
    started = asyncio.get_running_loop().time()
    with pytest.raises(EventBusError, match=r"connection is closed \(.+\) and reopening it failed"):
        await bus.publish([ContractPing(aggregate_id=uuid4())])
    assert asyncio.get_running_loop().time() - started < 5, "reopening gives up in time"
