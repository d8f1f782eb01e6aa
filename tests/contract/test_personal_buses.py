"""Personal data over every broker bus (issue 18): a bus with a `PersonalData` attached seals
marked fields in what it publishes and opens them in what it consumes; a consumer without one
dead-letters the message (undecodable) instead of handing sealed text to its handlers."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import uuid4

import pytest
from test_buses import bus_factory

from eventsource import DomainEvent, register_event
from eventsource.personal import InMemoryKeyStore, LocalKEK, Personal, PersonalData, SubjectId
from eventsource.testing.contract.bus import consuming
from extras import import_extra

import_extra("cryptography")  # sealing needs it: the core run skips this module

BROKERS = ["redis", "nats", "rabbitmq"]


@register_event
class ParcelAddressed(DomainEvent):
    event_type: str = "ParcelAddressed"
    aggregate_type: str = "Parcel"
    recipient_id: Annotated[str, SubjectId()]
    recipient_name: Annotated[str, Personal(replacement="")]


async def publish_one(broker: str, consumer_keys: bool) -> tuple[DomainEvent, list[Any], Any]:
    """Publish one marked event through a bus with the keys; (the event, what a consumer
    (with the keys or without) handed its handler, the consumer's dead letters)."""
    personal = PersonalData(InMemoryKeyStore(), LocalKEK(LocalKEK.generate()))
    received: list[DomainEvent] = []
    letters: list[Any] = []
    sent = ParcelAddressed(aggregate_id=uuid4(), recipient_id="r-1", recipient_name="Grace H")
    async with bus_factory(broker) as open_bus, open_bus() as consumer, open_bus() as publisher:
        personal.attach(publisher)
        if consumer_keys:
            personal.attach(consumer)
        consumer.subscribe(ParcelAddressed, received.append)
        async with consuming(consumer):
            await publisher.publish([sent])
            for _ in range(500):  # up to 10 s, for the event or its dead letter
                letters = await open_bus.dead_letters(consumer)
                if received or letters:
                    break
                await asyncio.sleep(0.02)
    return sent, received, letters


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_bus_seals_what_it_publishes_and_opens_what_it_consumes(broker: str) -> None:
    sent, received, letters = await publish_one(broker, consumer_keys=True)
    assert received == [sent]
    assert letters == []


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_consumer_without_keys_dead_letters_sealed_messages(broker: str) -> None:
    sent, received, letters = await publish_one(broker, consumer_keys=False)
    assert received == []
    assert [letter.event_id for letter in letters] == [str(sent.event_id)]
    assert "no key store" in letters[0].reason
