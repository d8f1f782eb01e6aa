"""How events become stored values: the JSON payload and the SQLite timestamp text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest

from eventsource import DomainEvent
from eventsource._sql.sqlite import now_utc_iso, utc_iso
from eventsource.exceptions import SerializationError
from eventsource.stores._rules import encode_payload


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
