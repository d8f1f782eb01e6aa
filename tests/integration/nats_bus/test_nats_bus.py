"""NATS bus behaviour beyond the contract: max-deliveries advisories, DLQ replay, publish
deduplication, stream info, messages near the server's max_payload."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest
from nats_bus_helpers import Buses, nats_buses

from eventsource.bus._nats_messages import encode, message_size
from eventsource.events.base import DomainEvent
from eventsource.events.registry import register_event
from eventsource.exceptions import EventBusError
from eventsource.testing.contract.bus import ContractPing, consuming, eventually


@register_event
class BulkyPing(DomainEvent):
    """An event as large as the server accepts."""

    event_type: str = "NATSBulkyPing"
    aggregate_type: str = "ContractBall"
    blob: str = ""


def bulky(max_payload: int, spare: int) -> BulkyPing:
    """A `BulkyPing` that fits the server's limit with `spare` bytes to spare (the server
    judges whether `message_size` is right: it closes the connection over the limit)."""
    event = BulkyPing(aggregate_id=uuid4())
    room = max_payload - spare - message_size(*encode(event))
    return event.model_copy(update={"blob": "b" * room})


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


@pytest.mark.parametrize("near_the_limit", [False, True], ids=["small", "near-max-payload"])
async def test_a_dead_letter_can_be_replayed(buses: Buses, near_the_limit: bool) -> None:
    broken = True
    done: list[DomainEvent] = []

    def handler(event: DomainEvent) -> None:
        if broken:
            raise ValueError("not yet")
        done.append(event)

    consumer = await buses.open(max_retries=2)
    assert consumer._nc is not None
    limit = consumer._nc.max_payload
    event = bulky(limit, spare=50) if near_the_limit else ContractPing(aggregate_id=uuid4(), n=5)
    consumer.subscribe(type(event), handler)
    async with consuming(consumer):
        await consumer.publish([event])
        await eventually(lambda: consumer.stats.messages_sent_to_dlq == 1, "the dead letter")
        [letter] = await consumer.get_dlq_messages()
        assert letter["headers"]["dlq_reason"] == "ValueError: not yet"
        assert letter["headers"]["dlq_retry_count"] == "2"
        assert letter["subject"] == consumer.config.dlq_subject
        # Near the limit the DLQ headers leave no room for the whole body: it is cut, and the
        # replay takes the whole original from the stream.
        cut_from = str(len(encode(event)[0])) if near_the_limit else None
        assert letter["headers"].get("dlq_original_size") == cut_from
        assert await consumer.get_dlq_messages(consumer_group="other") == []
        broken = False
        assert await consumer.replay_dlq_message(letter["sequence"])
        await eventually(lambda: bool(done), "the replayed event")
    assert done == [event]
    assert await consumer.get_dlq_messages() == []
    assert not await consumer.replay_dlq_message(letter["sequence"])
    assert consumer.stats.reconnections == 0, "the server never closed the connection"


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


async def test_an_undecodable_message_near_max_payload_is_dead_lettered(buses: Buses) -> None:
    seen: list[DomainEvent] = []
    consumer = await buses.open()
    consumer.subscribe_to_all_events(seen.append)
    publisher = await buses.open()
    assert publisher._nc is not None
    limit = publisher._nc.max_payload
    garbage = b"\xff" * (limit - 200)  # with the DLQ headers it would be over the limit
    headers = {"event_id": str(uuid4()), "event_type": "ContractPing"}
    await publisher._jetstream.publish(
        publisher.config.subject_for("Raw", "Big"), garbage, headers=headers
    )
    good = ContractPing(aggregate_id=uuid4())
    await publisher.publish([good])
    async with consuming(consumer):
        await eventually(lambda: bool(seen), "the event after the oversize dead letter")
        [letter] = await consumer.get_dlq_messages()
    assert seen == [good]
    assert letter["headers"]["event_id"] == headers["event_id"]
    assert "not UTF-8" in letter["headers"]["dlq_reason"]
    assert letter["headers"]["dlq_original_size"] == str(len(garbage))
    assert 0 < len(letter["data"]) < len(garbage)
    assert consumer.stats.reconnections == 0, "the server never closed the connection"


async def test_an_event_over_max_payload_is_refused_before_anything_is_sent(buses: Buses) -> None:
    bus = await buses.open(publish_attempts=2)
    assert bus._nc is not None
    limit = bus._nc.max_payload
    await bus.publish([bulky(limit, spare=0)])  # exactly at the limit: accepted
    with pytest.raises(EventBusError, match=f"over the NATS server's max_payload of {limit}"):
        await bus.publish([ContractPing(aggregate_id=uuid4()), bulky(limit, spare=-1)])
    info = await bus.get_stream_info()
    assert info["stream"]["messages"] == 1, "nothing of the refused call was published"
    assert bus.stats.reconnections == 0, "the server never closed the connection"
