"""Issue 15, acceptance 1 (messages): a bus message and an outbox row carrying the first
release's shape (`CustomerRegistered` v1) arrive as `CustomerSignedUp` v3; the carried payload
is left as it was. In memory (the message paths do not touch a database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from evo_support import (
    CUSTOMER,
    CustomerSignedUp,
    evolved,
    v1_payload,
)

from eventsource import DomainEvent, EventRegistry, InMemoryEventBus, OutboxRelay
from eventsource.bus._codec import decode_message
from eventsource.evolution import Upcasters
from eventsource.repositories.outbox import InMemoryOutboxRepository, OutboxEntry

__all__ = ["evolved"]  # fixtures


def test_a_bus_message_of_the_old_shape_decodes_as_the_class(
    evolved: tuple[EventRegistry, Upcasters],
) -> None:
    aggregate = uuid4()
    event_id, payload = v1_payload(aggregate, 1, name="Cy")
    fields = {b"event_type": b"CustomerRegistered", b"event_id": event_id.encode(),
              b"payload": payload.encode()}
    event = decode_message(fields, evolved[0])
    assert isinstance(event, CustomerSignedUp)
    assert (event.full_name, event.tier, event.event_version) == ("Cy", "basic", 3)
    assert fields[b"payload"] == payload.encode()


class Recorder(InMemoryEventBus):
    def __init__(self) -> None:
        super().__init__(enable_tracing=False)
        self.published: list[DomainEvent] = []

    async def publish(self, events: Any, background: bool = False) -> None:
        self.published.extend(events)


async def test_an_outbox_row_of_the_old_shape_is_relayed_as_the_class(
    evolved: tuple[EventRegistry, Upcasters],
) -> None:
    outbox = InMemoryOutboxRepository(enable_tracing=False)
    aggregate = uuid4()
    event_id, payload = v1_payload(aggregate, 1, name="Di")
    data = {"event_id": event_id, "event_type": "CustomerRegistered",
            "aggregate_id": str(aggregate), "aggregate_type": CUSTOMER,
            "payload": json.loads(payload)}
    row_id = uuid4()
    outbox._rows[row_id] = OutboxEntry(
        id=row_id, event_id=UUID(event_id), event_type="CustomerRegistered",
        aggregate_id=aggregate, aggregate_type=CUSTOMER, tenant_id=None,
        event_data=data, created_at=datetime.now(UTC),
    )
    before = json.dumps(data, sort_keys=True)
    bus = Recorder()
    relay = OutboxRelay(outbox, bus, evolved[0])
    result = await relay.run_once()
    assert result.published == 1
    [event] = bus.published
    assert isinstance(event, CustomerSignedUp)
    assert (event.full_name, event.tier, event.event_version) == ("Di", "basic", 3)
    assert json.dumps(data, sort_keys=True) == before
