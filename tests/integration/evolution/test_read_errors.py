"""Issue 15, acceptance 4 (read half) and 6: a row stored under a newer version than its class
raises `UnknownEventVersionError` naming type, version and position (with the opt-in it loads,
unknown fields ignored); an upcaster that raises or returns a non-dict raises
`UpcasterFailedError` naming the upcaster, the event id and the position. On a SQLite file and
on PostgreSQL; reads hand over the rows before the bad one first."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest
from evo_support import (
    CUSTOMER,
    Backend,
    CustomerSignedUp,
    OldRow,
    backend,
    evolved,
    postgresql_backend,
    sqlite_backend_,
    v1_payload,
)

from eventsource import DomainEvent, EventRegistry
from eventsource.evolution import UnknownEventVersionError, UpcasterFailedError, Upcasters
from eventsource.stores.interface import ReadOptions

__all__ = ["backend", "evolved", "postgresql_backend", "sqlite_backend_"]  # fixtures


class Audited(DomainEvent):
    event_type: str = "Audited"
    aggregate_type: str = CUSTOMER
    event_version: int = 2
    note: str


def broken(data: dict[str, Any]) -> dict[str, Any]:
    raise KeyError("note")


def not_a_dict(data: dict[str, Any]) -> Any:
    return [data]


def _row(event_type: str, **fields: Any) -> OldRow:
    aggregate = uuid4()
    event_id, payload = v1_payload(aggregate, 1, event_type, **fields)
    return OldRow(aggregate, 1, event_type, event_id, payload)


async def test_a_newer_stored_version_is_refused_unless_accepted(
    backend: Backend, evolved: tuple[EventRegistry, Upcasters]
) -> None:
    aggregate = uuid4()
    event_id, payload = v1_payload(aggregate, 1, "CustomerSignedUp", full_name="Ann",
                                   tier="gold", loyalty_points=12)
    payload = payload.replace('"event_version": 1', '"event_version": 4')
    await backend.insert([OldRow(aggregate, 1, "CustomerSignedUp", event_id, payload)])
    with pytest.raises(UnknownEventVersionError) as raised:
        await backend.store.get_events(aggregate, CUSTOMER)
    assert raised.value.stored_version == 4
    with pytest.raises(UnknownEventVersionError) as raised:
        [s async for s in backend.store.read_all()]
    message = str(raised.value)
    assert "'CustomerSignedUp'" in message
    assert "event_version 4" in message
    assert re.search(r"at global position \d+", message)

    evolved[1].accept_newer_versions = True
    event = (await backend.store.get_events(aggregate, CUSTOMER)).events[0]
    assert isinstance(event, CustomerSignedUp)
    assert (event.full_name, event.tier, event.event_version) == ("Ann", "gold", 3)
    assert not hasattr(event, "loyalty_points")


@pytest.mark.parametrize(
    ("function", "says"),
    [(broken, "raised KeyError: 'note'"), (not_a_dict, "returned list, not a dict")],
)
async def test_a_failing_upcaster_is_named_with_event_and_position(
    backend: Backend, evolved: tuple[EventRegistry, Upcasters], function: Any, says: str
) -> None:
    registry, upcasters = evolved
    registry.register(Audited)
    upcasters.register("Audited", 1, function)
    good = _row("CustomerRegistered", name="Bea")
    bad = _row("Audited", text="x")
    await backend.insert([good, bad])
    handed: list[DomainEvent] = []

    async def read_all() -> None:
        async for stored in backend.store.read_all():
            handed.append(stored.event)

    with pytest.raises(UpcasterFailedError) as raised:
        await read_all()
    error = raised.value
    assert [str(e.event_id) for e in handed] == [good.event_id]  # the good row came first
    assert str(error.event_id) == bad.event_id
    assert error.upcaster.endswith(f".{function.__qualname__}")
    assert error.position == await _first_position(backend) + 1
    message = str(error)
    for named in (function.__qualname__, bad.event_id, says):
        assert named in message
    assert f"at global position {error.position}" in message


async def _first_position(backend: Backend) -> int:
    first = await backend.store.read_all(ReadOptions(limit=1))  # the good row only
    return first.events[0].global_position
