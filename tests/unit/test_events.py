"""DomainEvent: defaults, immutability, copies, dict and JSON round trips (API.md §1.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel, Field, ValidationError

from eventsource import DomainEvent, register_event
from eventsource.events import base


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


class Address(BaseModel):
    street: str
    zip_code: str


@register_event
class UnitTaskCreated(DomainEvent):
    event_type: str = "UnitTaskCreated"
    aggregate_type: str = "Task"
    title: str
    estimate: int = Field(default=0, ge=0)


@register_event
class UnitRichEvent(DomainEvent):
    event_type: str = "UnitRichEvent"
    aggregate_type: str = "Order"
    customer_id: UUID
    placed_at: datetime
    total: Decimal
    priority: Priority
    address: Address
    lines: list[Address] = Field(default_factory=list)


@register_event
class UnitStamped(DomainEvent):
    event_type: str = "UnitStamped"
    aggregate_type: str = "Clock"
    timestamp: str


def created(**kw: object) -> UnitTaskCreated:
    return UnitTaskCreated(aggregate_id=kw.pop("aggregate_id", uuid4()), title="Write", **kw)


def test_new_event_defaults() -> None:
    first, second = created(), created()
    assert first.event_id != second.event_id
    assert first.correlation_id != second.correlation_id
    assert first.event_id != first.correlation_id
    assert (first.event_version, first.aggregate_version) == (1, 1)
    assert first.occurred_at.tzinfo is not None
    assert first.occurred_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - first.occurred_at) < timedelta(minutes=1)
    assert first.metadata == {}
    assert first.metadata is not second.metadata
    assert (first.tenant_id, first.actor_id, first.causation_id) == (None, None, None)
    assert (first.event_type, first.aggregate_type) == ("UnitTaskCreated", "Task")
    assert created(aggregate_version=4).aggregate_version == 4


def test_event_module_path() -> None:
    assert base.DomainEvent is DomainEvent


def test_events_are_frozen() -> None:
    event = created()
    with pytest.raises(ValidationError):
        event.title = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event.aggregate_version = 2  # type: ignore[misc]
    assert event.title == "Write"


def test_payload_validation_and_unknown_kwargs() -> None:
    with pytest.raises(ValidationError):
        created(estimate=-1)
    with pytest.raises(ValidationError):
        UnitTaskCreated(aggregate_id=uuid4())  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        created(aggregate_version=0)
    assert not hasattr(created(surprise=1), "surprise")


def test_with_metadata_returns_a_copy() -> None:
    event = created()
    copy = event.with_metadata(source="api", request_id="abc123")
    assert event.metadata == {}
    assert copy.metadata == {"source": "api", "request_id": "abc123"}
    assert copy.event_id == event.event_id
    assert copy.with_metadata(source="cli").metadata == {"source": "cli", "request_id": "abc123"}


def test_causation_and_correlation_helpers() -> None:
    cause, effect = created(), created()
    caused = effect.with_causation(cause)
    assert caused.causation_id == cause.event_id
    assert caused.correlation_id == cause.correlation_id
    assert caused.is_caused_by(cause)
    assert caused.is_correlated_with(cause)
    assert not effect.is_caused_by(cause)
    assert effect.causation_id is None
    assert effect.with_aggregate_version(5).aggregate_version == 5
    assert effect.aggregate_version == 1


def test_to_dict_and_from_dict_round_trip() -> None:
    event = created(tenant_id=uuid4(), actor_id="u1", metadata={"k": [1, 2]})
    data = event.to_dict()
    assert data["event_type"] == "UnitTaskCreated"
    assert data["event_id"] == str(event.event_id)
    assert isinstance(data["occurred_at"], str)
    assert set(data) >= {
        "event_id",
        "event_type",
        "event_version",
        "occurred_at",
        "aggregate_id",
        "aggregate_type",
        "aggregate_version",
        "tenant_id",
        "actor_id",
        "correlation_id",
        "causation_id",
        "metadata",
        "title",
        "estimate",
    }
    assert "timestamp" not in data
    assert UnitTaskCreated.from_dict(data) == event


def rich() -> UnitRichEvent:
    return UnitRichEvent(
        aggregate_id=uuid4(),
        customer_id=uuid4(),
        placed_at=datetime(2024, 5, 1, 10, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2))),
        total=Decimal("1234.5600"),
        priority=Priority.HIGH,
        address=Address(street="Main 1", zip_code="01234"),
        lines=[Address(street="a", zip_code="1")],
        metadata={"nested": {"x": [1, None, "y"]}},
    )


def test_json_round_trip_keeps_types() -> None:
    event = rich()
    back = UnitRichEvent.model_validate_json(event.model_dump_json())
    assert back == event
    assert isinstance(back.customer_id, UUID)
    assert back.placed_at == event.placed_at
    assert back.placed_at.utcoffset() == timedelta(hours=2)
    assert isinstance(back.total, Decimal)
    assert back.total == Decimal("1234.5600")
    assert str(back.total) == "1234.5600"
    assert back.priority is Priority.HIGH
    assert isinstance(back.address, Address)
    assert back.lines == [Address(street="a", zip_code="1")]
    assert UnitRichEvent.from_dict(event.to_dict()) == event


def test_timestamp_falls_back_to_occurred_at() -> None:
    event = created()
    assert event.timestamp == event.occurred_at
    assert "timestamp" not in event.model_dump()
    stamped = UnitStamped(aggregate_id=uuid4(), timestamp="own field")
    assert stamped.timestamp == "own field"
    with pytest.raises(AttributeError):
        _ = event.no_such_attribute


def test_str_names_type_ids_and_version() -> None:
    event = created(aggregate_version=3)
    assert str(event) == (
        f"UnitTaskCreated(event_id={event.event_id}, aggregate_id={event.aggregate_id}, version=3)"
    )


def test_events_compare_by_value() -> None:
    event = created()
    assert UnitTaskCreated.model_validate(event.model_dump()) == event
    assert created() != event
