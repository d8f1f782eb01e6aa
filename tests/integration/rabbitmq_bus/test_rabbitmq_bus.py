"""RabbitMQEventBus beyond the shared contract (API.md §11.3): config, stats, queue info, health,
routing, batched publishing, the DLQ (fields, replay, purge) and the lifecycle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import pytest
from rabbitmq_bus_helpers import Buses, CuttableProxy, rabbitmq_buses, via

from brokers import require_rabbitmq
from eventsource.bus.rabbitmq import (
    BatchPublishError,
    DLQMessage,
    QueueInfo,
    RabbitMQEventBus,
    RabbitMQEventBusConfig,
    RabbitMQEventBusStats,
    RabbitMQNotAvailableError,
    ShutdownError,
)
from eventsource.events.base import DomainEvent
from eventsource.exceptions import EventBusError
from eventsource.testing.contract.bus import ContractPing, ContractPong, consuming, eventually


@pytest.fixture
async def buses() -> AsyncIterator[Buses]:
    async with rabbitmq_buses() as opened:
        yield opened


def test_config_defaults_and_derived_names() -> None:
    config = RabbitMQEventBusConfig()
    assert config.rabbitmq_url == "amqp://guest:guest@localhost:5672/"
    assert (config.exchange_name, config.exchange_type, config.consumer_group) == (
        "events",
        "topic",
        "default",
    )
    assert (config.prefetch_count, config.max_retries, config.enable_dlq) == (10, 3, True)
    assert (config.dlq_exchange_suffix, config.dlq_message_ttl, config.dlq_max_length) == (
        "_dlq",
        None,
        None,
    )
    assert (config.durable, config.auto_delete, config.heartbeat) == (True, False, 60)
    assert (config.reconnect_delay, config.max_reconnect_delay) == (1.0, 60.0)
    assert (config.retry_base_delay, config.retry_max_delay, config.retry_jitter) == (
        1.0,
        60.0,
        0.1,
    )
    assert (config.shutdown_timeout, config.batch_size, config.max_concurrent_publishes) == (
        30.0,
        100,
        10,
    )
    assert config.ssl_options is None
    assert config.ssl_context is None
    assert config.verify_ssl is True
    assert (config.ca_file, config.cert_file, config.key_file) == (None, None, None)
    assert config.routing_key_pattern is None
    assert config.enable_tracing is True
    assert config.queue_name == "events.default"
    assert config.dlq_exchange_name == "events_dlq"
    assert config.dlq_queue_name == "events.default.dlq"
    assert config.get_effective_routing_key() == "#"
    assert RabbitMQEventBusConfig(exchange_type="direct").get_effective_routing_key() == (
        "events.default"
    )
    assert RabbitMQEventBusConfig(exchange_type="fanout").get_effective_routing_key() == ""
    assert RabbitMQEventBusConfig(routing_key_pattern="Order.*").get_effective_routing_key() == (
        "Order.*"
    )
    assert config.consumer_name is not None
    assert RabbitMQEventBusConfig().consumer_name != config.consumer_name
    with pytest.raises(ValueError, match="exchange_type"):
        RabbitMQEventBusConfig(exchange_type="nope")
    with pytest.raises(ValueError, match="not 3"):
        RabbitMQEventBusConfig(exchange_type=3)  # type: ignore[arg-type]


def test_retry_delay_grows_and_is_capped() -> None:
    config = RabbitMQEventBusConfig(retry_base_delay=1.0, retry_max_delay=5.0, retry_jitter=0.0)
    assert [config.retry_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    jittery = RabbitMQEventBusConfig(retry_base_delay=1.0, retry_jitter=0.1)
    assert all(0.9 <= jittery.retry_delay(1) <= 1.1 for _ in range(50))


def test_stats_dict_keys() -> None:
    bus = RabbitMQEventBus(RabbitMQEventBusConfig(enable_tracing=False))
    assert isinstance(bus.get_stats(), RabbitMQEventBusStats)
    stats = bus.get_stats_dict()
    assert list(stats) == [
        "events_published",
        "events_consumed",
        "events_processed_success",
        "events_processed_failed",
        "messages_sent_to_dlq",
        "handler_errors",
        "reconnections",
        "publish_confirms",
        "publish_returns",
        "batch_publishes",
        "batch_events_published",
        "batch_partial_failures",
        "last_publish_at",
        "last_consume_at",
        "last_error_at",
        "connected_at",
        "is_connected",
        "is_consuming",
        "uptime_seconds",
    ]
    assert (stats["is_connected"], stats["is_consuming"], stats["uptime_seconds"]) == (
        False,
        False,
        0.0,
    )
    assert not bus.is_shutdown


def test_missing_driver_raises_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import eventsource.bus.rabbitmq as module

    monkeypatch.setattr(module, "aio_pika", None)
    with pytest.raises(RabbitMQNotAvailableError, match=r"eventsource-py\[rabbitmq\]"):
        RabbitMQEventBus()
    assert issubclass(RabbitMQNotAvailableError, ImportError)


def test_the_package_imports_without_aio_pika() -> None:
    code = (
        "import sys; sys.modules['aio_pika'] = None\n"
        "import eventsource.bus as bus\n"
        "assert bus.RABBITMQ_AVAILABLE is False\n"
        "bus.RabbitMQEventBusConfig(exchange_name='x')\n"
        "try:\n    bus.RabbitMQEventBus()\nexcept bus.RabbitMQNotAvailableError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "pip install 'eventsource-py[rabbitmq]'" in done.stdout


async def test_queue_info_and_health(buses: Buses) -> None:
    bus = RabbitMQEventBus(buses.config(consumer_group="g1"))
    assert await bus.get_queue_info() == QueueInfo(
        f"{buses.exchange}.g1", 0, 0, "unknown", "not connected"
    )
    down = await bus.health_check()
    assert not down.healthy
    assert (down.connection_status, down.channel_status) == ("disconnected", "not_initialized")
    assert (down.queue_status, down.dlq_status) == ("not_initialized", "inaccessible")
    assert down.error is not None
    assert "Not connected to RabbitMQ" in down.error
    assert down.details is not None
    assert down.details["exchange"] == buses.exchange
    bus = await buses.open(consumer_group="g1")
    bus.subscribe(ContractPing, lambda e: None)
    async with consuming(bus):
        await bus.publish([ContractPing(aggregate_id=uuid4()) for _ in range(5)])
        await eventually(lambda: bus.stats.events_processed_success == 5, "5 processed")
        info = await bus.get_queue_info()
        health = await bus.health_check()
    assert (info.name, info.consumer_count, info.state) == (f"{buses.exchange}.g1", 1, "running")
    assert health.healthy
    assert (health.connection_status, health.channel_status, health.queue_status) == (
        "connected",
        "open",
        "accessible",
    )
    assert (health.dlq_status, health.error) == ("accessible", None)
    assert health.details is not None
    assert (health.details["exchange"], health.details["queue"]) == (buses.exchange, info.name)
    assert (health.details["consumer_group"], health.details["consuming"]) == ("g1", True)
    assert health.details["dlq_queue"] == f"{info.name}.dlq"
    assert health.details["stats"]["events_processed_success"] == 5
    assert (await bus.get_queue_info()).state == "idle"
    stats = bus.get_stats_dict()
    assert (stats["events_published"], stats["publish_confirms"], stats["is_connected"]) == (
        5,
        5,
        True,
    )
    assert stats["connected_at"] is not None
    assert stats["last_consume_at"] is not None
    bus.reset_stats()
    assert bus.stats.events_published == 0
    assert bus.stats.connected_at is not None


async def test_health_check_reports_a_missing_queue_and_a_disabled_dlq(buses: Buses) -> None:
    import aio_pika

    bus = await buses.open(consumer_group="g2", enable_dlq=False)
    assert (await bus.health_check()).dlq_status == "disabled"
    connection = await aio_pika.connect(buses.url)
    try:
        await (await connection.channel()).queue_delete(bus.config.queue_name)
    finally:
        await connection.close()
    health = await bus.health_check()
    assert not health.healthy
    assert health.queue_status.startswith("error: ")
    assert health.error is not None
    assert bus.config.queue_name in health.error


async def test_exchange_type_is_case_insensitive(buses: Buses) -> None:
    assert RabbitMQEventBusConfig(exchange_type="FANOUT").exchange_type == "fanout"
    bus = await buses.open(exchange_type="Direct")
    assert bus.config.exchange_type == "direct"
    await bus.bind_event_type(ContractPing)
    seen: list[DomainEvent] = []
    bus.subscribe(ContractPing, seen.append)
    async with consuming(bus):
        await bus.publish([ContractPing(aggregate_id=uuid4())])
        await eventually(lambda: len(seen) == 1, "the ping through the direct exchange")


async def test_a_shut_down_bus_refuses_to_publish_and_consume(buses: Buses) -> None:
    bus = await buses.open()
    await bus.shutdown()
    ping = ContractPing(aggregate_id=uuid4())
    with pytest.raises(ShutdownError, match="shut down"):
        await bus.publish([ping])
    with pytest.raises(ShutdownError):
        await bus.publish_batch([ping])
    with pytest.raises(ShutdownError):
        await bus.start_consuming()
    with pytest.raises(ShutdownError):
        bus.start_consuming_in_background()
    assert issubclass(ShutdownError, EventBusError)
    assert not bus.is_connected, "nothing reconnected"
    await bus.shutdown()  # a second shutdown is harmless


async def test_publish_batch_raises_batch_publish_error_naming_the_counts() -> None:
    broker = require_rabbitmq()
    target = urlsplit(broker)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5672)
    port = await proxy.start()
    try:
        async with rabbitmq_buses(via(broker, port)) as buses:
            bus = await buses.open(batch_size=4, max_reconnect_delay=0.3)
            await proxy.close()  # the broker is gone for good
            events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(10)]
            with pytest.raises(BatchPublishError, match="10 of 10 events") as caught:
                await bus.publish_batch(events)
            assert caught.value.results == {"total": 10, "published": 0, "failed": 10, "chunks": 3}
            assert len(caught.value.errors) == 3
            assert all(isinstance(error, EventBusError) for error in caught.value.errors)
            assert bus.stats.batch_partial_failures == 1
            with pytest.raises(BatchPublishError) as ordered:
                await bus.publish_batch(events, preserve_order=True)
            assert ordered.value.results["failed"] == 10
            assert len(ordered.value.errors) == 1, "stops at the first failed chunk"
    finally:
        await proxy.close()


async def test_unroutable_messages_are_counted_as_returns(buses: Buses) -> None:
    # On a direct exchange the group's queue is bound by its own name only.
    bus = await buses.open(exchange_type="direct")
    await bus.publish([ContractPing(aggregate_id=uuid4())])  # no queue bound for its key
    await eventually(lambda: bus.stats.publish_returns == 1, "the return")
    assert bus.stats.events_published == 1


async def test_direct_exchange_routes_only_bound_event_types(buses: Buses) -> None:
    bus = await buses.open(exchange_type="direct")
    await bus.bind_event_type(ContractPing)
    seen: list[DomainEvent] = []
    bus.subscribe_to_all_events(seen.append)
    async with consuming(bus):
        ping = ContractPing(aggregate_id=uuid4())
        await bus.publish([ContractPong(aggregate_id=uuid4()), ping])
        await eventually(lambda: bool(seen), "the ping")
        await bus.publish([ContractPing(aggregate_id=uuid4())])
        await eventually(lambda: len(seen) == 2, "the second ping")
    assert [type(e) for e in seen] == [ContractPing, ContractPing]
    assert seen[0] == ping


async def test_publish_batch(buses: Buses) -> None:
    bus = await buses.open(batch_size=30)
    await bus.bind_routing_key("#")
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(100)]
    ordered = await bus.publish_batch(events, preserve_order=True)
    unordered = await bus.publish_batch(events)
    expected = {"total": 100, "published": 100, "failed": 0, "chunks": 4}
    assert ordered == unordered == expected
    assert (bus.stats.batch_publishes, bus.stats.batch_events_published) == (2, 200)
    assert bus.stats.batch_partial_failures == 0
    seen: list[int] = []
    bus.subscribe(ContractPing, lambda e: seen.append(e.n))
    async with consuming(bus):
        await eventually(lambda: len(seen) == 200, "both batches")
    assert seen[:100] == list(range(100)), "preserve_order keeps the order"
    assert sorted(seen[100:]) == list(range(100))


async def test_dead_letter_fields_replay_count_and_purge(buses: Buses) -> None:
    bus = await buses.open(max_retries=2)
    broken = True
    done: list[UUID] = []

    def handler(event: DomainEvent) -> None:
        if broken:
            raise RuntimeError("not yet")
        done.append(event.event_id)

    bus.subscribe(ContractPing, handler)
    event = ContractPing(aggregate_id=uuid4(), n=7)
    async with consuming(bus):
        await bus.publish([event])
        await eventually(lambda: bus.stats.messages_sent_to_dlq == 1, "the dead letter")
        [letter] = await bus.get_dlq_messages()
        assert isinstance(letter, DLQMessage)
        assert letter.message_id == str(event.event_id)
        assert letter.event_type == "ContractPing"
        assert letter.routing_key == buses.config().queue_name
        assert letter.original_routing_key == "ContractBall.ContractPing"
        assert (letter.dlq_reason, letter.dlq_error_type) == (
            "RuntimeError: not yet",
            "RuntimeError",
        )
        assert letter.dlq_retry_count == 2
        assert letter.dlq_timestamp
        assert letter.headers["event_id"] == str(event.event_id)
        assert letter.headers["dlq_consumer_group"] == "default"
        assert bus.stats.handler_errors == 2
        assert await bus.get_dlq_message_count() == 1
        assert len(await bus.get_dlq_messages()) == 1, "reading leaves them in the DLQ"
        broken = False
        assert await bus.replay_dlq_message(str(event.event_id)) is True
        await eventually(lambda: done == [event.event_id], "the replayed event")
        assert await bus.get_dlq_message_count() == 0
        assert await bus.replay_dlq_message(str(event.event_id)) is False
        broken = True
        await bus.publish([ContractPing(aggregate_id=uuid4()) for _ in range(3)])
        await eventually(lambda: bus.stats.messages_sent_to_dlq == 4, "three more")
    assert await bus.purge_dlq() == 3
    assert await bus.get_dlq_messages() == []


async def test_death_helpers_read_the_bus_s_dead_letters(buses: Buses) -> None:
    bus = await buses.open(max_retries=3)

    def broken(event: DomainEvent) -> None:
        raise RuntimeError("down")

    bus.subscribe(ContractPing, broken)
    ping = ContractPing(aggregate_id=uuid4())
    assert not RabbitMQEventBus.is_from_dlq(ping.model_dump())
    async with consuming(bus):
        await bus.publish([ping])
        await eventually(lambda: bus.stats.messages_sent_to_dlq == 1, "the dead letter")
    [letter] = await bus.get_dlq_messages()
    # Its two back-offs through the retry queue are no deaths: it died once, rejected here.
    assert RabbitMQEventBus.get_death_info(letter) == {
        "is_dead_lettered": True,
        "death_count": 1,
        "first_death_queue": bus.config.queue_name,
        "first_death_reason": "rejected",
        "first_death_exchange": buses.exchange,
        "original_routing_key": "ContractBall.ContractPing",
        "x_death": None,
    }
    assert RabbitMQEventBus.is_from_dlq(letter)
    assert RabbitMQEventBus.get_death_count(letter.headers) == 1


async def _next_message(queue: Any) -> Any:
    for _ in range(500):
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.02)
    pytest.fail(f"nothing arrived in {queue.name}")


async def test_death_helpers_read_what_rabbitmq_recorded(buses: Buses) -> None:
    import aio_pika

    config = buses.config()
    source, target = f"{config.queue_name}.ttl", f"{config.queue_name}.expired"
    connection = await aio_pika.connect(buses.url)
    try:
        channel = await connection.channel()
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": target
        }
        await channel.declare_queue(source, arguments=arguments, auto_delete=True)
        expired = await channel.declare_queue(target, auto_delete=True)
        message = aio_pika.Message(b"{}", expiration=0.01)
        for _ in range(2):  # dead-lettered twice the same way: one record, counted twice
            await channel.default_exchange.publish(message, routing_key=source)
            got = await _next_message(expired)
            message = aio_pika.Message(b"{}", headers=dict(got.headers), expiration=0.01)
            await got.ack()
        info = RabbitMQEventBus.get_death_info(got)
    finally:
        await connection.close()
    assert info["is_dead_lettered"] is True
    assert info["death_count"] == 2
    assert (info["first_death_queue"], info["first_death_reason"]) == (source, "expired")
    assert (info["first_death_exchange"], info["original_routing_key"]) == ("", source)
    assert info["x_death"][0]["queue"] == source


async def test_disabled_dlq_drops_after_retries(buses: Buses) -> None:
    bus = await buses.open(enable_dlq=False, max_retries=1)

    def broken(event: DomainEvent) -> None:
        raise ValueError("x")

    bus.subscribe(ContractPing, broken)
    async with consuming(bus):
        await bus.publish([ContractPing(aggregate_id=uuid4())])
        await eventually(lambda: bus.stats.handler_errors == 1, "the failure")
    assert (await bus.get_queue_info()).message_count == 0
    assert await bus.get_dlq_message_count() == 0


async def test_background_consuming_and_context_manager(buses: Buses) -> None:
    seen: list[UUID] = []
    async with RabbitMQEventBus(buses.config()) as bus:
        assert isinstance(bus, RabbitMQEventBus)
        bus.subscribe(ContractPing, lambda e: seen.append(e.event_id))
        task = bus.start_consuming_in_background()
        await bus.wait_until_consuming()
        assert bus.is_consuming
        event = ContractPing(aggregate_id=uuid4())
        await bus.publish([event], background=True)
        await eventually(lambda: seen == [event.event_id], "the event")
    assert task.done()
    assert bus.is_shutdown
    assert not bus.is_connected
