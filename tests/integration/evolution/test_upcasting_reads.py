"""Issue 15, acceptance 1: rows an older release wrote (raw SQL, type `CustomerRegistered`
v1) read as `CustomerSignedUp` v3 through a two-step chain on every store read path, on a
SQLite file and on PostgreSQL; the stored rows are byte-for-byte unchanged afterwards. In
memory, objects of release 1's class are kept as the durable stores read their rows back."""

from __future__ import annotations

from uuid import UUID

from evo_support import (
    CUSTOMER,
    Backend,
    Customer,
    CustomerSignedUp,
    Profile,
    any_backend,
    committed_events,
    evolved,
    memory_backend_,
    old_rows,
    postgresql_backend,
    sqlite_backend_,
)

from eventsource import AggregateRepository, DomainEvent
from eventsource.stores.interface import ReadOptions

__all__ = [
    "any_backend", "evolved", "memory_backend_", "postgresql_backend", "sqlite_backend_",
]  # fixtures


def _is_v3(event: DomainEvent, n: int | None = None) -> bool:
    return (
        isinstance(event, CustomerSignedUp)
        and event.event_version == 3
        and event.event_type == "CustomerSignedUp"
        and event.tier == "basic"
        and (n is None or event.full_name == f"customer {n}")
    )


async def test_every_store_read_path_upcasts_and_leaves_the_rows_alone(
    any_backend: Backend,
) -> None:
    rows = old_rows(6, per_stream=2)
    await any_backend.insert(rows)
    before = await any_backend.digest()
    store = any_backend.store
    first: UUID = rows[0].aggregate_id

    stream = await store.get_events(first, CUSTOMER)
    assert [_is_v3(e, n) for n, e in enumerate(stream.events)] == [True, True]
    assert stream.version == 2
    by_type = await store.get_events_by_type(CUSTOMER)
    assert len(by_type) == 6
    assert all(_is_v3(e) for e in by_type)
    everything = [s async for s in store.read_all()]
    assert [s.event.full_name for s in everything] == [f"customer {n}" for n in range(6)]
    assert all(_is_v3(s.event) for s in everything)
    streamed = await store.read_stream(f"{first}:{CUSTOMER}", ReadOptions())
    assert len(streamed.events) == 2
    assert all(_is_v3(s.event) for s in streamed.events)
    committed = await committed_events(store, len(rows))
    assert [str(e.event_id) for e in committed] == [r.event_id for r in rows]
    assert all(_is_v3(e) for e in committed)

    repository = AggregateRepository(store, Customer, CUSTOMER)
    customer = await repository.load(first)
    assert customer.state == Profile(name="customer 1", tier="basic")
    assert customer.version == 2

    assert await any_backend.digest() == before
