"""An `AggregateRepository` over `TaggingEventStore`: saves are tagged by the events' classes,
keep the stream's expected-version check, and count for DCB conditions (every backend)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar

import pytest
from _dcb_support import Backend, backend, noted
from pydantic import BaseModel

from eventsource import (
    AggregateRepository,
    DeclarativeAggregate,
    DomainEvent,
    OptimisticLockError,
    handles,
    register_event,
)
from eventsource.dcb import (
    AppendCondition,
    DCBConflictError,
    DCBError,
    Query,
    QueryItem,
    TaggingEventStore,
)
from eventsource.tenancy import tenant_scope

__all__ = ["backend"]  # the fixture, imported for pytest


@register_event
class SeatBooked(DomainEvent):
    event_type: str = "DcbSeatBooked"
    seat: str
    aggregate_type: str = "DcbFlight"
    dcb_tags: ClassVar[tuple[str, ...]] = ("seat:{seat}",)


class FlightState(BaseModel):
    seats: list[str] = []


class Flight(DeclarativeAggregate[FlightState]):
    aggregate_type = "DcbFlight"

    def _get_initial_state(self) -> FlightState:
        return FlightState()

    @handles(SeatBooked)
    def _on_booked(self, event: SeatBooked) -> None:
        state = self._state or self._get_initial_state()
        self._state = FlightState(seats=[*state.seats, event.seat])

    def book(self, seat: str) -> None:
        self.apply_event(SeatBooked(aggregate_id=self.aggregate_id, seat=seat,
                                    aggregate_version=self.get_next_version()))


async def _repository(backend: Backend) -> AggregateRepository[Flight]:
    tagging = TaggingEventStore(await backend.open())
    return AggregateRepository(tagging, Flight, "DcbFlight", enable_tracing=False)


async def test_saves_are_tagged_and_versioned(backend: Backend) -> None:
    repository = await _repository(backend)
    flight = Flight(uuid.uuid4())
    flight.book("1A")
    flight.book("1B")
    await repository.save(flight)
    loaded = await repository.load(flight.aggregate_id)
    assert loaded.state is not None
    assert loaded.state.seats == ["1A", "1B"]
    assert loaded.version == 2
    dcb = await backend.open()
    found = (await dcb.read(Query(QueryItem(tags=["seat:1B"])))).events
    assert [(e.event.aggregate_id, e.tags) for e in found] == [
        (flight.aggregate_id, frozenset({"seat:1B"}))
    ]
    stale = Flight(flight.aggregate_id)  # at version 0: the stream is at 2
    stale.book("2A")
    with pytest.raises(OptimisticLockError) as caught:
        await repository.save(stale)
    assert caught.value.actual_version == 2
    assert (await dcb.read(Query(QueryItem(tags=["seat:2A"])))).events == []


async def test_a_save_after_a_read_fails_the_condition(backend: Backend) -> None:
    repository = await _repository(backend)
    dcb = await backend.open()
    query = Query(QueryItem(tags=["seat:3C"]))
    seen = await dcb.read(query)
    flight = Flight(uuid.uuid4())
    flight.book("3C")
    await repository.save(flight)
    with pytest.raises(DCBConflictError):
        await dcb.append([noted("seat:3C")], AppendCondition(query, seen.token))


async def test_tenant_scopes_are_refused(backend: Backend) -> None:
    repository = await _repository(backend)
    flight = Flight(uuid.uuid4())
    flight.book("4D")
    with tenant_scope(uuid.uuid4()), pytest.raises(DCBError, match="tenant_scope"):
        await repository.save(flight)
    dcb = await backend.open()
    with tenant_scope(uuid.uuid4()), pytest.raises(DCBError, match="tenant_scope"):
        await dcb.read(Query(QueryItem(tags=["seat:4D"])))  # it would see every tenant's
    with tenant_scope(uuid.uuid4()), pytest.raises(DCBError, match="tenant_scope"):
        await dcb.append([noted("seat:4D")])
    assert (await dcb.read(Query(QueryItem(tags=["seat:4D"])))).events == []


async def test_stores_with_an_outbox_are_refused(tmp_path: Path) -> None:
    from eventsource.dcb.sqlite import SQLiteDCBStore
    from eventsource.stores.sqlite import SQLiteEventStore

    with pytest.raises(DCBError, match="outbox"):
        SQLiteDCBStore(SQLiteEventStore(str(tmp_path / "o.db"), outbox_enabled=True))


def test_the_synchronous_facade(tmp_path: Path) -> None:
    from eventsource.dcb.sqlite import SQLiteDCBStore
    from eventsource.dcb.sync import SyncDCBStore
    from eventsource.stores.sqlite import SQLiteEventStore

    path = tmp_path / "sync.db"
    with SyncDCBStore(lambda: SQLiteDCBStore(SQLiteEventStore(str(path)))) as store:
        query = Query(QueryItem(tags=["seat:5E"]))
        seen = store.read(query)
        flight = uuid.uuid4()
        [position] = store.append([SeatBooked(aggregate_id=flight, seat="5E")],
                                  AppendCondition(query, seen.token))
        with pytest.raises(DCBConflictError) as caught:
            store.append([SeatBooked(aggregate_id=flight, seat="5E")],
                         AppendCondition(query, seen.token))
        assert caught.value.positions == (position,)
