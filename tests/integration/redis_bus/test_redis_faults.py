"""Fault injection against the real Redis (issue 6, acceptance 2): connections dropped in the
middle of a 10,000-event stream, and a consumer process killed with SIGKILL."""

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
from redis_bus_helpers import Buses, redis_buses

from brokers import redis_text
from eventsource.testing.contract.bus import ContractPing, consuming, eventually

HERE = Path(__file__).parent


@pytest.fixture
async def buses() -> AsyncIterator[Buses]:
    async with redis_buses() as opened:
        yield opened


async def _kill_clients(url: str, marker: str, stop: asyncio.Event, every: float) -> int:
    """Drop the connections of this test's buses (named after `marker`; other users of the
    server are left alone) until `stop`; count the rounds that killed something."""
    import redis.asyncio as aioredis  # after require_redis: a missing driver skips or fails

    admin = aioredis.Redis.from_url(url)
    rounds = 0
    try:
        while not stop.is_set():
            await asyncio.sleep(every)
            clients = await admin.client_list()
            ids = [str(c["id"]) for c in clients if marker in c.get("name", "")]
            if ids:
                pipe = admin.pipeline(transaction=False)
                for client_id in ids:  # one ID per CLIENT KILL: repeated filters are ANDed
                    pipe.execute_command("CLIENT", "KILL", "ID", client_id)
                await pipe.execute(raise_on_error=False)  # some may have gone already
                rounds += 1
    finally:
        await admin.aclose()
    return rounds


@pytest.mark.slow
async def test_dropped_connections_lose_no_event(buses: Buses) -> None:
    total = 10_000
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(total)]
    seen: set[UUID] = set()
    marker = buses.prefix  # in every connection name of this test's buses
    consumers = [await buses.open(consumer_name=f"{marker}-c{i}", batch_size=100) for i in range(2)]
    for consumer in consumers:
        consumer.subscribe(ContractPing, lambda e: seen.add(e.event_id))
    publisher = await buses.open(consumer_name=f"{marker}-publisher")
    stop = asyncio.Event()
    async with consuming(consumers[0]), consuming(consumers[1]):
        killer = asyncio.create_task(_kill_clients(buses.url, marker, stop, every=0.15))
        for start in range(0, total, 200):
            await publisher.publish(events[start : start + 200])
            await asyncio.sleep(0.005)  # spread publishing over several kills
        await eventually(lambda: len(seen) >= total // 2, "half the events", timeout=60)
        stop.set()
        rounds = await killer
        await eventually(lambda: len(seen) == total, "every event despite the kills", timeout=90)
    assert rounds >= 3
    assert seen == {e.event_id for e in events}
    reconnections = publisher.stats.reconnections + sum(c.stats.reconnections for c in consumers)
    assert reconnections > 0, "the connections really were dropped"


@pytest.mark.slow
async def test_sigkilled_consumer_leaves_its_messages_to_the_group(buses: Buses) -> None:
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(300)]
    publisher = await buses.open()
    await publisher.publish(events)
    recorder = publisher._redis
    processed_key = f"{buses.prefix}:processed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(  # noqa: ASYNC220 - a real process, killed below
        [sys.executable, str(HERE / "redis_killable_consumer.py"), buses.url, buses.prefix], env=env
    )
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while await recorder.scard(processed_key) < 20:
            assert child.poll() is None, "the consumer process died by itself"
            assert asyncio.get_running_loop().time() < deadline, "the consumer never started"
            await asyncio.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    done_by_child = {UUID(redis_text(m)) for m in await recorder.smembers(processed_key)}
    assert len(done_by_child) < len(events), "killed mid-stream"
    info = await publisher.get_stream_info()
    assert info["pending_messages"] > 0, "the dead consumer left unacknowledged messages"

    seen: set[UUID] = set()
    rescuer = await buses.open(consumer_name="rescuer")
    rescuer.subscribe(ContractPing, lambda e: seen.add(e.event_id))
    await asyncio.sleep(0.2)
    result = await rescuer.recover_pending_messages(min_idle_time_ms=100)
    assert result["claimed"] == info["pending_messages"]
    assert result["reprocessed"] == result["claimed"]
    async with consuming(rescuer):  # and whatever the dead one never read
        await eventually(
            lambda: done_by_child | seen == {e.event_id for e in events}, "every event"
        )
