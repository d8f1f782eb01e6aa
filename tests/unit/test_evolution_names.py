"""Which name a decoded event carries: a declared old name (`renamed_from`) is read as the
class's own name; any other name a registry resolves to the class (an explicit registration
name, a registry mapping every name to one class) stays the stored one."""

from __future__ import annotations

import json
from uuid import uuid4

from eventsource import DomainEvent, EventRegistry
from eventsource.stores.codec import decode_event


class Signed(DomainEvent):
    event_type: str = "Signed"
    aggregate_type: str = "Deal"
    renamed_from = ("Agreed",)
    event_version: int = 2
    by: str


def _payload(event_type: str) -> str:
    return json.dumps({"event_type": event_type, "event_version": 2, "by": "Ann",
                       "aggregate_id": str(uuid4()), "aggregate_type": "Deal"})


def test_an_old_name_is_read_as_the_class_name() -> None:
    registry = EventRegistry()
    registry.register(Signed)
    event = decode_event("Agreed", _payload("Agreed"), registry)
    assert type(event) is Signed
    assert event.event_type == "Signed"


def test_another_registration_name_is_kept() -> None:
    registry = EventRegistry()
    registry.register(Signed)
    registry.register(Signed, "SignedV2Export")
    event = decode_event("SignedV2Export", _payload("SignedV2Export"), registry)
    assert type(event) is Signed
    assert event.event_type == "SignedV2Export"
