"""NATS bus behaviour beyond the contract: max-deliveries advisories, DLQ replay, publish
deduplication, stream info."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest
from nats_bus_helpers import Buses, nats_buses

from eventsource.events.base import DomainEvent
from eventsource.testing.contract.bus import ContractPing, consuming, eventually


@pytest.fixture
async def buses() -> AsyncIterator[Buses]:
    async with nats_buses() as opened:
        yield opened


async def test_a_message_never_acknowledged_reaches_the_dlq_by_advisory(buses: Buses) -> None:
    release = asyncio.Event()
    started: Counter[UUID] = Counter()

    async def hang(event: DomainEvent) -> None:
        started[event.event_id] += 1
        await release.wait()  # a stuck handler: the message is never acknowledged in time

    first = await buses.open(consumer_name="a", max_retries=2, ack_wait=0.5)
    second = await buses.open(consumer_name="b", max_retries=2, ack_wait=0.5)
    # The server notices the exhausted message when it would redeliver it: to a pulling third.
    third = await buses.open(consumer_name="c", max_retries=2, ack_wait=0.5)
    publisher = await buses.open()
    stuck = ContractPing(aggregate_id=uuid4())
    for bus in (first, second, third):
        bus.subscribe(ContractPing, hang)
    async with consuming(first), consuming(second), consuming(third):
        try:
            await publisher.publish([stuck])
            await eventually(lambda: started[stuck.event_id] == 2, "two deliveries")
            deadline = asyncio.get_running_loop().time() + 15
            while not (found := await publisher.get_dlq_messages()):
                assert asyncio.get_running_loop().time() < deadline, "no dead letter"
                await asyncio.sleep(0.05)
        finally:
            release.set()  # the handlers end, so the consumers can stop
    assert len(found) == 1
    headers = found[0]["headers"]
    assert isinstance(headers, dict)
    assert headers["event_id"] == str(stuck.event_id)
    assert "max_deliver" in headers["dlq_reason"]
    assert headers["dlq_error_type"] == "MaxDeliveriesExceeded"
    assert started[stuck.event_id] == 2
    assert sum(bus.stats.messages_sent_to_dlq for bus in (first, second, third)) == 1


async def test_a_dead_letter_can_be_replayed(buses: Buses) -> None:
    broken = True
    done: list[DomainEvent] = []

    def handler(event: DomainEvent) -> None:
        if broken:
            raise ValueError("not yet")
        done.append(event)

    consumer = await buses.open(max_retries=2)
    consumer.subscribe(ContractPing, handler)
    event = ContractPing(aggregate_id=uuid4(), n=5)
    async with consuming(consumer):
        await consumer.publish([event])
        await eventually(lambda: consumer.stats.messages_sent_to_dlq == 1, "the dead letter")
        [letter] = await consumer.get_dlq_messages()
        assert letter["headers"]["dlq_reason"] == "ValueError: not yet"
        assert letter["headers"]["dlq_retry_count"] == "2"
        assert letter["subject"] == consumer.config.dlq_subject
        assert await consumer.get_dlq_messages(consumer_group="other") == []
        broken = False
        assert await consumer.replay_dlq_message(letter["sequence"])
        await eventually(lambda: bool(done), "the replayed event")
    assert done == [event]
    assert await consumer.get_dlq_messages() == []
    assert not await consumer.replay_dlq_message(letter["sequence"])


async def test_a_republished_event_is_stored_once(buses: Buses) -> None:
    bus = await buses.open()
    events = [ContractPing(aggregate_id=uuid4(), n=n) for n in range(5)]
    await bus.publish(events)
    await bus.publish(events[:3])  # e.g. a retry after a lost acknowledgement
    info = await bus.get_stream_info()
    assert info["stream"]["messages"] == 5
    assert info["connected"]
    assert info["stats"]["events_published"] == 8


async def test_stream_info_and_stats_shape(buses: Buses) -> None:
    bus = await buses.open()
    assert list(bus.get_stats_dict()) == [
        "events_published",
        "events_consumed",
        "events_processed_success",
        "events_processed_failed",
        "messages_redelivered",
        "messages_sent_to_dlq",
        "handler_errors",
        "reconnections",
    ]
    info = await bus.get_stream_info()
    assert info["stream"]["name"] == bus.config.stream_name
    assert info["consumer_group"] == {
        "name": "default",
        "pending": 0,
        "ack_pending": 0,
        "redelivered": 0,
    }
    assert info["dlq_messages"] == 0
    await bus.disconnect()
    assert await bus.get_stream_info() == {"connected": False}
