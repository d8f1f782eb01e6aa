"""How events become stored values: the JSON payload and the SQLite timestamp text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ConfigDict, Field, field_serializer

from eventsource import DomainEvent
from eventsource._sql.sqlite import now_utc_iso, utc_iso
from eventsource.exceptions import SerializationError
from eventsource.stores._sqlite_append import _dumps_envelope_plainly, _envelope_texts
from eventsource.stores.codec import encode_payload


class PriceSet(DomainEvent):
    event_type: str = "PriceSet"
    aggregate_type: str = "Product"
    price: Decimal
    valid_until: datetime
    tags: tuple[str, ...] = ()


def test_payload_is_the_events_full_json_dump() -> None:
    event = PriceSet(
        aggregate_id=uuid4(),
        price=Decimal("12.50"),
        valid_until=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        tags=("a", "é"),
        tenant_id=uuid4(),
        actor_id="user-1",
    ).with_metadata(source="test", nested={"n": 1})
    assert encode_payload(event) == event.model_dump_json()


def test_unserialisable_payload_is_a_serialization_error_naming_the_event() -> None:
    event = PriceSet(
        aggregate_id=uuid4(), price=Decimal(1), valid_until=datetime.now(UTC)
    ).with_metadata(handle=object())
    with pytest.raises(SerializationError) as caught:
        encode_payload(event)
    assert str(event.event_id) in str(caught.value)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2025-01-02T03:04:05.000006+00:00"),
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05.000000+00:00"),
        (datetime(2025, 1, 2, 3, 4, 5, 6), "2025-01-02T03:04:05.000006+00:00"),  # naive: UTC
        (datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05.000000+00:00"),
        (
            datetime(2025, 1, 2, 1, 0, 0, 7, tzinfo=timezone(timedelta(hours=2))),
            "2025-01-01T23:00:00.000007+00:00",
        ),
        (datetime(2025, 1, 2, tzinfo=timezone(timedelta(0))), "2025-01-02T00:00:00.000000+00:00"),
    ],
)
def test_timestamps_are_fixed_width_utc_text(moment: datetime, text: str) -> None:
    assert utc_iso(moment) == text


def test_now_is_fixed_width_utc_text_between_two_clock_readings() -> None:
    for _ in range(3):
        before = utc_iso(datetime.now(UTC))
        text = now_utc_iso()
        after = utc_iso(datetime.now(UTC))
        assert before <= text <= after
        assert len(text) == 32
        assert datetime.fromisoformat(text).utcoffset() == timedelta(0)


# -- SQLite's event id and time columns, cut from the JSON dump ------------------------------


class Aliased(DomainEvent):
    """Dumps its time under another key: the columns must come from the fields."""

    event_type: str = "Aliased"
    aggregate_type: str = "Product"
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC), alias="at")


class LocalTime(DomainEvent):
    """Dumps its time in the zone's local time, in the very format of a UTC dump."""

    event_type: str = "LocalTime"
    aggregate_type: str = "Product"

    @field_serializer("occurred_at")
    def _local(self, moment: datetime) -> str:
        return moment.astimezone(timezone(timedelta(hours=5))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Unlisted(DomainEvent):
    """Leaves its id out of the dump."""

    event_type: str = "Unlisted"
    aggregate_type: str = "Product"
    event_id: UUID = Field(default_factory=uuid4, exclude=True)


class Seconds(DomainEvent):
    event_type: str = "Seconds"
    aggregate_type: str = "Product"
    model_config = ConfigDict(ser_json_temporal="seconds")


class LooseId(DomainEvent):
    """An event id that is any text."""

    event_type: str = "LooseId"
    aggregate_type: str = "Product"
    event_id: str = "not-a-uuid-but-exactly-36-characters"  # type: ignore[assignment]


_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    # hypothesis annotates `timezones` as SearchStrategy[None]: any tzinfo strategy is refused
    timezones=st.none() | st.just(UTC) | st.timezones() | st.builds(  # type: ignore[arg-type]
        timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))
    ),
)


@settings(max_examples=300, deadline=None)
@given(moment=_moments, zero_micros=st.booleans(), v4=st.booleans())
def test_id_and_time_columns_match_the_events_fields(
    moment: datetime, zero_micros: bool, v4: bool
) -> None:
    if zero_micros:
        moment = moment.replace(microsecond=0)
    extra = {"event_id": uuid4()} if v4 else {}
    event = PriceSet(
        aggregate_id=uuid4(), price=Decimal(1), valid_until=moment, occurred_at=moment, **extra
    ).with_metadata(occurred_at="2000-01-01T00:00:00.000000Z")
    expected = (str(event.event_id), utc_iso(event.occurred_at))
    assert _envelope_texts(event, encode_payload(event)) == expected


def test_an_ordinary_event_class_has_its_columns_cut_from_its_dump() -> None:
    assert _dumps_envelope_plainly(PriceSet)


@pytest.mark.parametrize("cls", [Aliased, LocalTime, Unlisted, Seconds, LooseId])
def test_classes_that_dump_their_envelope_otherwise_get_columns_from_their_fields(
    cls: type[DomainEvent],
) -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    event = cls.model_validate({"aggregate_id": uuid4(), "occurred_at": moment, "at": moment})
    assert event.occurred_at == moment
    assert not _dumps_envelope_plainly(cls)
    texts = _envelope_texts(event, encode_payload(event))
    assert texts == (str(event.event_id), "2025-01-02T03:04:05.000006+00:00")
