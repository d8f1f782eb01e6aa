"""Issue 15, acceptance 3 (aggregate half): a history holding a split event (`CustomerEdited`
v1, retired, read as a `CustomerRenamed` and a `CustomerMoved`) loads to the right state; the
aggregate reports the stored version, and the next save succeeds at that expected version. The
parts keep the stored event's stream version and global position. SQLite file and PostgreSQL."""

from __future__ import annotations

from uuid import uuid4

from evo_support import (
    CUSTOMER,
    Backend,
    Customer,
    CustomerMoved,
    CustomerRenamed,
    CustomerSignedUp,
    OldRow,
    Profile,
    backend,
    evolved,
    postgresql_backend,
    sqlite_backend_,
    v1_payload,
)

from eventsource import AggregateRepository

__all__ = ["backend", "evolved", "postgresql_backend", "sqlite_backend_"]  # fixtures


async def test_a_split_history_loads_and_saves_at_the_stored_version(backend: Backend) -> None:
    customer_id = uuid4()
    rows = []
    for version, (event_type, fields) in enumerate([
        ("CustomerRegistered", {"name": "Ann"}),
        ("CustomerEdited", {"name": "Ann Lee", "city": "Oslo"}),
    ], start=1):
        event_id, payload = v1_payload(customer_id, version, event_type, **fields)
        rows.append(OldRow(customer_id, version, event_type, event_id, payload))
    await backend.insert(rows)
    before = await backend.digest()

    stream = await backend.store.get_events(customer_id, CUSTOMER)
    assert [type(e) for e in stream.events] == [CustomerSignedUp, CustomerRenamed, CustomerMoved]
    assert stream.version == 2
    renamed, moved = stream.events[1:]
    assert renamed.aggregate_version == moved.aggregate_version == 2
    assert len({renamed.event_id, moved.event_id, stream.events[0].event_id}) == 3
    again = await backend.store.get_events(customer_id, CUSTOMER)
    assert [e.event_id for e in again.events] == [e.event_id for e in stream.events]  # stable

    everything = [s async for s in backend.store.read_all()]
    assert [(s.stream_position, s.event_type) for s in everything] == [
        (1, "CustomerSignedUp"), (2, "CustomerRenamed"), (2, "CustomerMoved")
    ]
    assert everything[1].global_position == everything[2].global_position

    repository = AggregateRepository(backend.store, Customer, CUSTOMER)
    customer = await repository.load(customer_id)
    assert await backend.digest() == before  # reads wrote nothing
    assert customer.state == Profile(name="Ann Lee", tier="basic", city="Oslo")
    assert customer.version == 2
    customer.move("Bergen")
    await repository.save(customer)  # expected version 2: the stored one
    reloaded = await repository.load(customer_id)
    assert reloaded.version == 3
    assert reloaded.state == Profile(name="Ann Lee", tier="basic", city="Bergen")
    assert (await backend.store.get_events(customer_id, CUSTOMER, from_version=2)).version == 3
