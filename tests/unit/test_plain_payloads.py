"""The in-memory store's shortcut around the dump: its verdict must be the dump's.

`InMemoryEventStore` keeps no JSON, so it passes events whose values plainly meet the storable
JSON rule without dumping them, and dumps the rest to decide. These tests pin that every event
gets exactly the verdict (and message) `encode_payloads` gives, including events whose class
changes what is written (serializers, computed fields, aliases, nested models), and that plain
events are not dumped at all (the point of the shortcut).
"""

from __future__ import annotations

import math
import uuid
from enum import Enum
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, computed_field, field_serializer

from eventsource import DomainEvent, InMemoryEventStore, SerializationError, register_event
from eventsource.stores import codec

BIG = 10**4300  # the smallest integer of 4,301 digits


@register_event
class PlainProbe(DomainEvent):
    event_type: str = "PlainProbe"
    aggregate_type: str = "Probe"
    name: str = ""
    count: int = 0
    ratio: float = 0.0
    note: str | None = None
    tags: list[str] = Field(default_factory=list)
    data: Any = None
    at: uuid.UUID | None = None


@register_event
class SerializedProbe(DomainEvent):
    """A plain float the serializer turns into a NUL string: only the dump shows it."""

    event_type: str = "SerializedProbe"
    aggregate_type: str = "Probe"
    ratio: float = 0.0

    @field_serializer("ratio")
    def _ratio(self, value: float) -> float | str:
        return "\x00" if value < 0 else value


@register_event
class ComputedProbe(DomainEvent):
    event_type: str = "ComputedProbe"
    aggregate_type: str = "Probe"
    name: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shout(self) -> str:
        return self.name.replace("!", "\x00")


@register_event
class AnnotatedProbe(DomainEvent):
    event_type: str = "AnnotatedProbe"
    aggregate_type: str = "Probe"
    name: Annotated[str, PlainSerializer(lambda v: v.replace("!", "\ud800"))] = ""


@register_event
class AliasedProbe(DomainEvent):
    event_type: str = "AliasedProbe"
    aggregate_type: str = "Probe"
    name: str = Field("", serialization_alias="label")


class Inner(BaseModel):
    value: float = 0.0


@register_event
class NestedProbe(DomainEvent):
    event_type: str = "NestedProbe"
    aggregate_type: str = "Probe"
    inner: Inner = Field(default_factory=Inner)


class Colour(Enum):
    RED = "red"
    NUL = "n\x00l"


@register_event
class EnumProbe(DomainEvent):
    event_type: str = "EnumProbe"
    aggregate_type: str = "Probe"
    colour: Colour = Colour.RED


@register_event
class OpenProbe(DomainEvent):
    model_config = ConfigDict(extra="allow")
    event_type: str = "OpenProbe"
    aggregate_type: str = "Probe"


class Nothing:
    """Falsy, and unknown to pydantic's serializer."""

    def __len__(self) -> int:
        return 0


def plain(**fields: Any) -> PlainProbe:
    return PlainProbe(aggregate_id=uuid.uuid4(), **fields)


def made(cls: type[DomainEvent], **fields: Any) -> DomainEvent:
    return cls(aggregate_id=uuid.uuid4(), **fields)


CASES: dict[str, DomainEvent] = {
    "plain": plain(name="é \U0001f600", count=BIG - 1, data={"k": [1, 2.5, None, True]}),
    "NUL in a str field": plain(name="a\x00b"),
    "surrogate in a str field": plain(name="a\ud800"),
    "surrogate pair in a str field": plain(name="\ud83d\ude00"),
    "NUL in the event type": plain(event_type="PlainProbe\x00"),
    "4,301 digits in an int field": plain(count=BIG),
    "-4,301 digits in an int field": plain(count=-BIG),
    "-4,300 digits in an int field": plain(count=1 - BIG),
    "NaN in a float field": plain(ratio=math.nan),
    "NUL in an optional str": plain(note="\x00"),
    "NUL in a list item": plain(tags=["ok", "\x00"]),
    "NUL in a key": plain(data={"a\x00": 1}),
    "surrogate in a key": plain(data={"\udc00": 1}),
    "int key": plain(data={1: "one"}),
    "4,301 digits deep in data": plain(data=[{"n": BIG}]),
    "infinity in metadata": plain().with_metadata(x=math.inf),
    "a set in data": plain(data={1.5, math.nan}),
    "an unknown falsy object in data": plain(data=Nothing()),
    "an empty dict in a list field (copy)": plain().model_copy(update={"tags": {}}),
    "a tuple in data": plain(data=(1, math.inf)),
    "nested lists in data": plain(data=[[[]], [[1.5]]]),
    "not a str in a str field (copy)": plain().model_copy(update={"name": 5}),
    "NUL in a str field (copy)": plain().model_copy(update={"name": "\x00"}),
    "4,301 digits in an int field (copy)": plain().model_copy(update={"count": BIG}),
    "NaN in an int field (copy)": plain().model_copy(update={"count": math.nan}),
    "serializer makes NUL": made(SerializedProbe, ratio=-1.0),
    "serializer keeps": made(SerializedProbe, ratio=1.0),
    "computed field makes NUL": made(ComputedProbe, name="hi!"),
    "computed field keeps": made(ComputedProbe, name="hi"),
    "annotated serializer makes a surrogate": made(AnnotatedProbe, name="hi!"),
    "aliased": made(AliasedProbe, name="x"),
    "aliased NUL": made(AliasedProbe, name="\x00"),
    "NaN in a nested model": made(NestedProbe, inner=Inner(value=math.nan)),
    "nested model": made(NestedProbe, inner=Inner(value=1.5)),
    "enum": made(EnumProbe),
    "enum with NUL": made(EnumProbe, colour=Colour.NUL),
    "extra NaN": made(OpenProbe, extra=math.nan),
    "extra NUL key": made(OpenProbe, x={"\x00": 1}),
    "extra": made(OpenProbe, extra=[1, "two"]),
}


def dump_verdict(*events: DomainEvent) -> str | None:
    """The message `encode_payloads` (what the durable stores write) refuses `events` with, or
    None."""
    try:
        codec.encode_payloads(events, None)
    except SerializationError as exc:
        return str(exc)
    return None


async def store_verdict(event: DomainEvent) -> str | None:
    """The message a fresh in-memory store refuses `event` with (having stored nothing), or
    None when it stored the event as it is."""
    store = InMemoryEventStore(enable_tracing=False)
    try:
        await store.append_events(event.aggregate_id, "Probe", [event], 0)
    except SerializationError as exc:
        assert await store.get_global_position() == 0
        return str(exc)
    assert (await store.get_events(event.aggregate_id, "Probe")).events == [event]
    return None


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the copies' wrong types
@pytest.mark.parametrize("event", [pytest.param(e, id=name) for name, e in CASES.items()])
async def test_the_in_memory_store_gives_the_dumps_verdict(event: DomainEvent) -> None:
    assert await store_verdict(event) == dump_verdict(event)


def deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [197, 198, 199, 200, 201])
async def test_nesting_gets_the_dumps_verdict_at_the_limit(levels: int) -> None:
    for event in (plain(data=deep(levels)), plain().with_metadata(x=deep(levels - 1))):
        assert await store_verdict(event) == dump_verdict(event)


async def test_a_batch_is_refused_whole_naming_its_first_bad_event() -> None:
    """Classes mixed in one batch: each class is looked at apart; the error is the dump's for
    the first bad event, and nothing is stored."""
    aggregate_id = uuid.uuid4()
    good = [cls(aggregate_id=aggregate_id) for cls in (PlainProbe, SerializedProbe) * 3]
    first_bad = PlainProbe(aggregate_id=aggregate_id, count=BIG)
    second_bad = SerializedProbe(aggregate_id=aggregate_id, ratio=-1.0)
    store = InMemoryEventStore(enable_tracing=False)
    for batch in ([*good, first_bad, *good, second_bad], [*good, second_bad, first_bad]):
        with pytest.raises(SerializationError) as refused:
            await store.append_events(aggregate_id, "Probe", batch, 0)
        assert str(refused.value) == dump_verdict(*batch)
        assert str(batch[len(good)].event_id) in str(refused.value)
        assert await store.get_global_position() == 0
    await store.append_events(aggregate_id, "Probe", good, 0)
    assert await store.get_global_position() == len(good)


async def test_plain_events_are_not_dumped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut's purpose: an append of plain events, alone or in a batch, dumps none of
    them; an event whose class changes what is written is still dumped."""
    dumped: list[DomainEvent] = []

    def counting(event: DomainEvent) -> str:
        dumped.append(event)
        return dump(event)

    dump = codec._checked_dump  # the dump every write path makes (encode_payload's first step)
    monkeypatch.setattr(codec, "_checked_dump", counting)
    store = InMemoryEventStore(enable_tracing=False)
    aggregate_id = uuid.uuid4()
    batch = [PlainProbe(aggregate_id=aggregate_id, name=f"n{i}", count=i) for i in range(5)]
    await store.append_events(aggregate_id, "Probe", batch[:1], 0)
    await store.append_events(aggregate_id, "Probe", batch[1:], 1)
    assert dumped == []
    serialized = SerializedProbe(aggregate_id=aggregate_id)
    await store.append_events(aggregate_id, "Probe", [serialized], 5)
    assert dumped == [serialized]
