"""The pydantic shim's fast path and its plain fallback give the same results.

`eventsource._compat.pydantic` calls pydantic's compiled serializer and validators directly;
when a release lacks them it falls back to the public API. Both paths are run here on events
that exercise what the codec relies on (defaults, unions, aliases, custom serializers, extra
fields), through the codec itself, and must agree to the byte and to the field.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ConfigDict, Field, field_serializer

from eventsource import DomainEvent, SerializationError, register_event
from eventsource._compat import pydantic as shim
from eventsource.stores import _payload_plans, codec
from eventsource.stores.codec import RowLayout


@register_event
class ShimPlain(DomainEvent):
    event_type: str = "ShimPlain"
    aggregate_type: str = "Shim"
    name: str = ""
    count: int = 0
    amount: Decimal = Decimal("0")
    tags: list[str] = Field(default_factory=list)
    data: Any = None
    ref: uuid.UUID | None = None


@register_event
class ShimSerialized(DomainEvent):
    event_type: str = "ShimSerialized"
    aggregate_type: str = "Shim"
    ratio: float = 0.0

    @field_serializer("ratio")
    def _ratio(self, value: float) -> str:
        return f"{value:.3f}"


@register_event
class ShimAliased(DomainEvent):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_type: str = "ShimAliased"
    aggregate_type: str = "Shim"
    label: str = Field(default="", alias="Label")


def _events() -> list[DomainEvent]:
    owner = uuid.uuid4()
    return [
        ShimPlain(aggregate_id=owner, name="ünïcode ✓", count=7, amount=Decimal("12.50"),
                  tags=["a", "b"], data={"k": [1, 2.5, None]}, ref=uuid.uuid4()),
        ShimSerialized(aggregate_id=owner, ratio=1.23456),
        ShimAliased(aggregate_id=owner, Label="x", surplus={"deep": [True]}),
    ]


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The codec and the payload plans on pydantic's public API only (fresh caches)."""
    monkeypatch.setattr(codec, "dump_json", shim.plain_dump_json)
    monkeypatch.setattr(codec, "json_validator", shim.plain_json_validator)
    monkeypatch.setattr(codec, "python_validator", shim.plain_python_validator)
    monkeypatch.setattr(
        _payload_plans, "has_custom_serialization", shim.plain_has_custom_serialization
    )
    monkeypatch.setattr(_payload_plans, "_plans", {})


def test_the_fast_path_is_in_use_on_this_pydantic() -> None:
    assert shim.FAST
    assert shim.dump_json is not shim.plain_dump_json


@pytest.mark.parametrize("event", _events(), ids=lambda e: e.event_type)
def test_dump_and_validate_agree(event: DomainEvent) -> None:
    fast = shim.dump_json(event)
    assert fast == shim.plain_dump_json(event) == event.model_dump_json()
    cls = type(event)
    assert shim.json_validator(cls)(fast) == shim.plain_json_validator(cls)(fast)
    as_dict = event.model_dump()
    assert shim.python_validator(cls)(as_dict) == shim.plain_python_validator(cls)(as_dict)
    assert shim.has_custom_serialization(cls) == (cls is ShimSerialized)


def _encode_and_decode(events: list[DomainEvent]) -> tuple[list[str], list[DomainEvent]]:
    codec.check_payloads(events, None)
    payloads = codec.encode_payloads(events, None)
    pairs = zip(events, payloads, strict=True)
    rows = [(n, e.event_id, e.event_type, p) for n, (e, p) in enumerate(pairs, 1)]
    layout = RowLayout(position=0, event_id=1, event_type=2, payload=3, version=-1,
                       aggregate_id=-1, aggregate_type=-1, stored_at=-1)
    return payloads, codec.decode_rows(rows, layout, None, None)


def test_the_codec_gives_the_same_rows_and_events_without_the_shim(
    request: pytest.FixtureRequest,
) -> None:
    events = _events()
    fast_payloads, fast_events = _encode_and_decode(events)
    request.getfixturevalue("plain")
    assert vars(codec)["dump_json"] is shim.plain_dump_json  # the fallback is what runs now
    plain_payloads, plain_events = _encode_and_decode(events)
    assert plain_payloads == fast_payloads
    assert plain_events == fast_events


@pytest.mark.usefixtures("plain")
def test_the_fallback_refuses_what_the_fast_path_refuses() -> None:
    bad = ShimPlain(aggregate_id=uuid.uuid4(), data={"x": float("nan")})
    with pytest.raises(SerializationError, match="ShimPlain"):
        codec.check_payloads([bad], None)
    with pytest.raises(SerializationError, match="ShimPlain"):
        codec.encode_payloads([bad], None)
