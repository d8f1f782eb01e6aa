"""Issue 15, snapshots: a snapshot of an older `schema_version` is upgraded by the registered
snapshot upcasters and used (no replay of the events before it); without a full chain it is
discarded, the aggregate replayed, and the discard counted. On a SQLite file and PostgreSQL
(event store), the snapshot kept in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

from evo_support import (
    CUSTOMER,
    Backend,
    CustomerMoved,
    backend,
    evolved,
    postgresql_backend,
    sqlite_backend_,
)
from pydantic import BaseModel

from eventsource import AggregateRepository, DeclarativeAggregate, EventRegistry, handles
from eventsource.evolution import Upcasters
from eventsource.evolution.snapshots import discarded_snapshots
from eventsource.snapshots.in_memory import InMemorySnapshotStore
from eventsource.snapshots.interface import Snapshot

__all__ = ["backend", "evolved", "postgresql_backend", "sqlite_backend_"]  # fixtures


class Moves(BaseModel):
    """Schema 3; schema 1 was {"city_list": [...]}, schema 2 had no `moves`."""

    cities: list[str] = []
    moves: int = 0


class Mover(DeclarativeAggregate[Moves]):
    aggregate_type = CUSTOMER
    schema_version: ClassVar[int] = 3

    def _get_initial_state(self) -> Moves:
        return Moves()

    @handles(CustomerMoved)
    def _moved(self, event: CustomerMoved) -> None:
        state = self._state or self._get_initial_state()
        self._state = Moves(cities=[*state.cities, event.city], moves=state.moves + 1)


async def _load_over_old_snapshot(backend: Backend) -> tuple[Mover, int]:
    """Three moves stored, a schema-1 snapshot at version 2 that says something the events do
    not (so the test sees which one was used); the loaded aggregate and the discards counted."""
    mover = uuid4()
    events = [CustomerMoved(aggregate_id=mover, aggregate_version=v, city=c)
              for v, c in enumerate(["Oslo", "Rome", "Lima"], start=1)]
    await backend.store.append_events(mover, CUSTOMER, events, 0)
    snapshots = InMemorySnapshotStore(enable_tracing=False)
    state = {"city_list": ["Snapshot", "City"]}
    await snapshots.save_snapshot(Snapshot(mover, CUSTOMER, 2, state, 1, datetime.now(UTC)))
    before = discarded_snapshots(CUSTOMER)
    repository = AggregateRepository(backend.store, Mover, CUSTOMER, snapshot_store=snapshots)
    loaded = await repository.load(mover)
    return loaded, discarded_snapshots(CUSTOMER) - before


async def test_an_old_snapshot_is_upgraded_by_its_upcasters(
    backend: Backend, evolved: tuple[EventRegistry, Upcasters]
) -> None:
    upcasters = evolved[1]

    @upcasters.snapshot_upcaster(CUSTOMER, 1)
    def rename(state: dict[str, Any]) -> dict[str, Any]:
        return {"cities": state["city_list"]}

    @upcasters.snapshot_upcaster(CUSTOMER, 2)
    def count(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "moves": len(state["cities"])}

    loaded, discarded = await _load_over_old_snapshot(backend)
    assert loaded.state == Moves(cities=["Snapshot", "City", "Lima"], moves=3)
    assert loaded.version == 3
    assert discarded == 0


async def test_without_a_full_chain_the_snapshot_is_discarded_and_counted(
    backend: Backend, evolved: tuple[EventRegistry, Upcasters]
) -> None:
    evolved[1].register_snapshot(CUSTOMER, 1, lambda state: {"cities": state["city_list"]})
    loaded, discarded = await _load_over_old_snapshot(backend)
    assert loaded.state == Moves(cities=["Oslo", "Rome", "Lima"], moves=3)  # replayed
    assert discarded == 1
