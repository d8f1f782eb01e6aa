"""Driver-free bus helpers: the message codec and the subscriber registry."""

from __future__ import annotations

from uuid import uuid4

import pytest

from eventsource import DomainEvent, InMemoryEventBus
from eventsource.bus._codec import (
    UndecodableMessageError,
    decode_message,
    describe_error,
    encode_message,
    event_headers,
)
from eventsource.bus._dispatch import SubscriberRegistry, run_handlers
from eventsource.events.registry import EventRegistry, register_event
from eventsource.exceptions import EventBusError, SerializationError


@register_event
class HelperShipped(DomainEvent):
    event_type: str = "HelperShipped"
    aggregate_type: str = "Parcel"
    carrier: str = "post"


class HelperShippedV2(HelperShipped):
    """Registered only in a component registry, under the same name."""


class Unserialisable(DomainEvent):
    event_type: str = "Unserialisable"
    aggregate_type: str = "Parcel"
    thing: object = None


def shipped(**fields: object) -> HelperShipped:
    return HelperShipped(aggregate_id=uuid4(), **fields)


def test_round_trip_keeps_every_field_and_the_headers_name_the_event() -> None:
    event = shipped(tenant_id=uuid4(), actor_id="u1", metadata={"k": [1, 2]})
    fields = encode_message(event)
    assert fields["event_id"] == str(event.event_id)
    assert fields["event_type"] == "HelperShipped"
    assert fields["aggregate_id"] == str(event.aggregate_id)
    assert fields["tenant_id"] == str(event.tenant_id)
    assert "causation_id" not in fields
    raw = {k.encode(): v.encode() for k, v in fields.items()}  # as a broker returns them
    assert decode_message(raw, None) == event
    assert decode_message(fields, None) == event


def test_headers_omit_unset_optional_ids() -> None:
    assert set(event_headers(shipped())) == {
        "event_id",
        "event_type",
        "aggregate_id",
        "aggregate_type",
        "aggregate_version",
        "occurred_at",
        "correlation_id",
    }


def test_the_component_registry_wins_over_the_default_one() -> None:
    registry = EventRegistry()
    registry.register(HelperShippedV2, "HelperShipped")
    assert type(decode_message(encode_message(shipped()), registry)) is HelperShippedV2
    assert type(decode_message(encode_message(shipped()), None)) is HelperShipped


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"event_type": b"\xff", b"payload": b"{}"}, "not UTF-8"),
        ({"payload": "{}"}, "no event_type"),
        ({"event_type": "HelperShipped"}, "no payload"),
        ({"event_type": "NoSuchType", "payload": "{}"}, "unknown event type"),
        ({"event_type": "HelperShipped", "payload": "{oops"}, "Invalid JSON"),
        ({"event_type": "HelperShipped", "payload": "{}"}, "aggregate_id"),
    ],
)
def test_undecodable_messages_raise_a_typed_error_with_the_reason(
    fields: dict[str, str] | dict[bytes, bytes], reason: str
) -> None:
    with pytest.raises(UndecodableMessageError) as caught:
        decode_message(fields, None)
    assert isinstance(caught.value, EventBusError)
    assert reason in caught.value.reason


def test_unknown_type_error_names_the_event() -> None:
    event_id = str(uuid4())
    with pytest.raises(UndecodableMessageError) as caught:
        decode_message({"event_id": event_id, "event_type": "Nope", "payload": "{}"}, None)
    assert (caught.value.event_id, caught.value.event_type) == (event_id, "Nope")


def test_an_unserialisable_event_fails_before_sending() -> None:
    with pytest.raises(SerializationError):
        encode_message(Unserialisable(aggregate_id=uuid4(), thing=object()))


def test_describe_error() -> None:
    assert describe_error(ValueError("bad")) == "ValueError: bad"


async def test_run_handlers_reports_failures_and_runs_the_rest() -> None:
    ran: list[str] = []

    def broken(event: DomainEvent) -> None:
        raise RuntimeError("x")

    async def working(event: DomainEvent) -> None:
        ran.append("ok")

    failures = await run_handlers([broken, working], shipped())
    assert ran == ["ok"]
    assert [(h, type(e)) for h, e in failures] == [(broken, RuntimeError)]
    assert await run_handlers([working], shipped()) == []


def test_registry_order_counts_and_identity_removal() -> None:
    registry = SubscriberRegistry()
    first, second, wildcard = (lambda e: None), (lambda e: None), (lambda e: None)
    registry.add(HelperShipped, first)
    registry.add(HelperShipped, second)
    registry.add_wildcard(wildcard)
    assert registry.handlers_for(shipped()) == [first, second, wildcard]
    assert (registry.count(), registry.count(HelperShipped), registry.count(DomainEvent)) == (
        2,
        2,
        0,
    )
    assert registry.remove(HelperShipped, first) is True
    assert registry.remove(HelperShipped, first) is False
    assert registry.remove_wildcard(wildcard) is True
    registry.clear()
    assert registry.handlers_for(shipped()) == []


def test_in_memory_bus_uses_the_shared_registry() -> None:
    bus = InMemoryEventBus()
    bus.subscribe(HelperShipped, print)
    bus.clear_subscribers()
    assert bus.get_subscriber_count() == 0


def test_the_fast_read_reply_unpacks_to_entries() -> None:
    from eventsource.bus._redis_entries import unpack_read

    reply = [
        b"1-0",
        1,
        b"T",
        b"e1",
        b"{}",
        None,
        b"2-0",
        0,
        None,
        None,
        None,
        None,
        b"3-0",
        1,
        None,
        None,
        b"x",
        [b"traceparent", b"00-abc-def-01"],
    ]
    assert unpack_read(reply) == [
        ("1-0", {b"event_type": b"T", b"event_id": b"e1", b"payload": b"{}"}),
        ("2-0", None),
        ("3-0", {b"payload": b"x", b"traceparent": b"00-abc-def-01"}),
    ]
