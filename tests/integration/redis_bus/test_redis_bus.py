"""RedisEventBus beyond the shared contract (API.md §11.1): config, stats, stream info,
recovery of stuck messages, the DLQ stream and its replay."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import cast
from uuid import UUID, uuid4

import pytest
from redis_bus_helpers import Buses, redis_buses

from brokers import RedisEntries, redis_text
from eventsource.bus.redis import (
    RedisEventBus,
    RedisEventBusConfig,
    RedisEventBusStats,
    RedisNotAvailableError,
)
from eventsource.events.base import DomainEvent
from eventsource.testing.contract.bus import ContractPing, consuming, eventually


@pytest.fixture
async def buses() -> AsyncIterator[Buses]:
    async with redis_buses() as opened:
        yield opened


def test_config_defaults_and_derived_names() -> None:
    config = RedisEventBusConfig()
    assert (config.redis_url, config.stream_prefix, config.consumer_group) == (
        "redis://localhost:6379",
        "events",
        "default",
    )
    assert (config.batch_size, config.block_ms, config.max_retries) == (100, 5000, 3)
    assert (config.pending_idle_ms, config.enable_dlq, config.dlq_stream_suffix) == (
        60000,
        True,
        "_dlq",
    )
    assert (config.socket_timeout, config.socket_connect_timeout) == (5.0, 5.0)
    assert (config.retry_key_prefix, config.retry_key_expiry_seconds) == ("retry", 86400)
    assert config.enable_tracing is True
    assert config.single_connection_client is False
    assert config.stream_name == "events:stream"
    assert config.dlq_stream_name == "events:stream_dlq"
    assert config.consumer_name is not None
    host, _, suffix = config.consumer_name.rpartition("-")
    assert host
    assert len(suffix) == 8
    int(suffix, 16)
    assert RedisEventBusConfig().consumer_name != config.consumer_name
    assert RedisEventBusConfig(consumer_name="w1").consumer_name == "w1"


def test_stats_keys_are_exactly_the_dataclass_fields() -> None:
    bus = RedisEventBus(RedisEventBusConfig(enable_tracing=False))
    assert isinstance(bus.stats, RedisEventBusStats)
    assert bus.get_stats_dict() == {
        "events_published": 0,
        "events_consumed": 0,
        "events_processed_success": 0,
        "events_processed_failed": 0,
        "messages_recovered": 0,
        "messages_sent_to_dlq": 0,
        "handler_errors": 0,
        "reconnections": 0,
    }
    assert not bus.is_connected
    assert not bus.is_consuming


def test_missing_driver_raises_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import eventsource.bus.redis as module

    monkeypatch.setattr(module, "aioredis", None)
    with pytest.raises(RedisNotAvailableError, match=r"eventsource-py\[redis\]"):
        RedisEventBus()
    assert issubclass(RedisNotAvailableError, ImportError)


def test_the_package_imports_without_redis() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; sys.modules['redis.asyncio'] = None\n"
        "import eventsource.bus as bus\n"
        "assert bus.REDIS_AVAILABLE is False\n"
        "bus.RedisEventBusConfig(stream_prefix='x')\n"
        "try:\n    bus.RedisEventBus()\nexcept bus.RedisNotAvailableError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "pip install 'eventsource-py[redis]'" in done.stdout


async def test_stream_info(buses: Buses) -> None:
    bus = RedisEventBus(buses.config())
    assert await bus.get_stream_info() == {"connected": False}
    bus = await buses.open(consumer_group="g1")
    bus.subscribe(ContractPing, lambda e: None)
    events = [ContractPing(aggregate_id=uuid4()) for _ in range(5)]
    await bus.publish(events)
    async with consuming(bus):
        await eventually(lambda: bus.stats.events_processed_success == 5, "5 processed")
        info = await bus.get_stream_info()
    assert info["connected"] is True
    assert info["stream"]["name"] == buses.config().stream_name
    assert info["stream"]["length"] == 5
    assert info["stream"]["first_entry_id"] < info["stream"]["last_entry_id"]
    assert info["consumer_groups"] == [{"name": "g1", "consumers": 1, "pending": 0}]
    assert (info["pending_messages"], info["dlq_messages"], info["active_consumers"]) == (0, 0, 1)
    assert info["stats"]["events_published"] == 5


async def test_connect_creates_the_consumer_group(buses: Buses) -> None:
    bus = await buses.open(consumer_group="g1")
    info = await bus.get_stream_info()
    assert info["consumer_groups"] == [{"name": "g1", "consumers": 0, "pending": 0}]
    assert info["stream"]["length"] == 0
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(3)]
    await bus.publish(events)
    seen: list[UUID] = []
    bus.subscribe(ContractPing, lambda e: seen.append(e.event_id))
    async with consuming(bus):
        await eventually(lambda: len(seen) == 3, "the events published before consuming")
    assert seen == [e.event_id for e in events]


async def test_get_retry_key_is_where_the_failures_are_counted(buses: Buses) -> None:
    bus = await buses.open(max_retries=1000)

    def broken(event: DomainEvent) -> None:
        raise RuntimeError("down")

    bus.subscribe(ContractPing, broken)
    await bus.publish([ContractPing(aggregate_id=uuid4())])
    async with consuming(bus):
        await eventually(lambda: bus.stats.handler_errors >= 2, "two failures")
    [(message_id, _fields)] = cast(RedisEntries, await bus._redis.xrange(bus.config.stream_name))
    key = bus.config.get_retry_key(message_id.decode())
    assert key.startswith(f"{buses.prefix}:retry:")
    assert int(redis_text(await bus._redis.get(key))) == bus.stats.handler_errors
    assert 0 < await bus._redis.ttl(key) <= bus.config.retry_key_expiry_seconds


async def _take_without_acking(buses: Buses, count: int, consumer: str = "crashed") -> None:
    """A consumer that reads and then dies: its messages stay pending."""
    raw = (await buses.open())._redis  # connecting created the group
    config = buses.config()
    await raw.xreadgroup(config.consumer_group, consumer, {config.stream_name: ">"}, count=count)


async def test_recover_claims_stuck_messages_of_another_consumer(buses: Buses) -> None:
    publisher = await buses.open()
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(30)]
    await publisher.publish(events)
    await _take_without_acking(buses, 30)
    seen: list[UUID] = []
    rescuer = await buses.open(consumer_name="rescuer")
    rescuer.subscribe(ContractPing, lambda e: seen.append(e.event_id))
    assert (await rescuer.recover_pending_messages(min_idle_time_ms=60_000))["claimed"] == 0
    await asyncio.sleep(0.05)
    result = await rescuer.recover_pending_messages(min_idle_time_ms=10, batch_size=7)
    assert result == {"checked": 30, "claimed": 30, "reprocessed": 30, "dlq": 0, "failed": 0}
    assert seen == [e.event_id for e in events]
    assert rescuer.stats.messages_recovered == 30
    assert (await rescuer.get_stream_info())["pending_messages"] == 0


async def test_recover_dead_letters_messages_out_of_retries(buses: Buses) -> None:
    publisher = await buses.open()
    await publisher.publish([ContractPing(aggregate_id=uuid4()) for _ in range(2)])
    await _take_without_acking(buses, 2)
    rescuer = await buses.open(max_retries=1)

    def broken(event: DomainEvent) -> None:
        raise ValueError("still broken")

    rescuer.subscribe(ContractPing, broken)
    await asyncio.sleep(0.05)
    result = await rescuer.recover_pending_messages(min_idle_time_ms=10)
    assert result == {"checked": 2, "claimed": 2, "reprocessed": 0, "dlq": 2, "failed": 0}
    letters = await rescuer.get_dlq_messages()
    assert [m["data"]["dlq_reason"] for m in letters] == ["ValueError: still broken"] * 2
    assert all(m["data"]["retry_count"] == "1" for m in letters)


async def test_dead_letter_fields_and_replay(buses: Buses) -> None:
    bus = await buses.open(max_retries=2)
    broken = True
    done: list[UUID] = []

    def handler(event: DomainEvent) -> None:
        if broken:
            raise RuntimeError("not yet")
        done.append(event.event_id)

    bus.subscribe(ContractPing, handler)
    event = ContractPing(aggregate_id=uuid4(), n=7)
    await bus.publish([event])
    async with consuming(bus):
        await eventually(lambda: bus.stats.messages_sent_to_dlq == 1, "the dead letter")
        [letter] = await bus.get_dlq_messages()
        data = letter["data"]
        assert data["event_id"] == str(event.event_id)
        assert data["event_type"] == "ContractPing"
        assert data["retry_count"] == "2"
        assert data["dlq_reason"] == "RuntimeError: not yet"
        assert data["original_message_id"]
        assert float(data["dlq_timestamp"]) > 0
        assert bus.stats.handler_errors == 2
        broken = False
        assert await bus.replay_dlq_message(letter["message_id"]) is True
        await eventually(lambda: done == [event.event_id], "the replayed event")
    assert await bus.get_dlq_messages() == []
    assert await bus.replay_dlq_message(letter["message_id"]) is False


async def test_a_restarted_consumer_first_finishes_its_own_pending(buses: Buses) -> None:
    publisher = await buses.open()
    await publisher.publish([ContractPing(aggregate_id=uuid4()) for _ in range(10)])
    await _take_without_acking(buses, 10, consumer="worker-1")
    seen: list[UUID] = []
    worker = await buses.open(consumer_name="worker-1", pending_idle_ms=600_000)
    worker.subscribe(ContractPing, lambda e: seen.append(e.event_id))
    async with consuming(worker):
        await eventually(lambda: len(seen) == 10, "the ten pending messages")
    assert worker.stats.messages_recovered == 0  # read back as its own, not claimed


async def test_disabled_dlq_drops_after_retries(buses: Buses) -> None:
    bus = await buses.open(enable_dlq=False, max_retries=1)

    def broken(event: DomainEvent) -> None:
        raise ValueError("x")

    bus.subscribe(ContractPing, broken)
    await bus.publish([ContractPing(aggregate_id=uuid4())])
    async with consuming(bus):
        await eventually(lambda: bus.stats.handler_errors == 1, "the failure")
        await eventually(lambda: bus.stats.events_consumed == 1, "the consumption")
    info = await bus.get_stream_info()
    assert (info["pending_messages"], info["dlq_messages"]) == (0, 0)
