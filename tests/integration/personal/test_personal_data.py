"""Personal data on a real SQLite file and the real PostgreSQL (issue 18, acceptance 1-3, 6).

Every test runs on both backends: marked fields never reach a table in plaintext (events,
outbox, snapshots) while every read path returns them; `forget` erases one subject of an event
and leaves the other; a ciphertext moved between fields or subjects is refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from personal_support import (
    NAME,
    PLAINTEXTS,
    SELLER_NAME,
    STREET,
    Backend,
    Order,
    OrderPlaced,
    OrderState,
    open_backend,
    placed,
)

from eventsource import DeclarativeProjection, DomainEvent, handles
from eventsource.aggregates.repository import AggregateRepository
from eventsource.exceptions import (
    KeyStoreUnavailableError,
    PersonalDataIntegrityError,
    SubjectErasedError,
    UnknownSubjectError,
)
from eventsource.personal import LocalKEK, PersonalDataErased, PersonalSnapshotStore, erased_fields
from eventsource.stores.codec import decode_event


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


async def every_read(backend: Backend, order_id: UUID) -> list[OrderPlaced]:
    """The order's OrderPlaced event through each read path of the store."""
    store = backend.store
    found: list[DomainEvent] = [*(await store.get_events(order_id, "Order")).events]
    found.extend(await store.get_events_by_type("Order"))
    found.extend([stored.event async for stored in store.read_all()])
    found.extend([stored.event async for stored in store.read_stream(f"{order_id}:Order")])
    found.extend(stored.event for stored in (await store.read_committed()).events)
    mine = [e for e in found if isinstance(e, OrderPlaced) and e.aggregate_id == order_id]
    assert len(mine) == 5
    return mine


def snapshots_of(backend: Backend) -> PersonalSnapshotStore:
    """A sealing snapshot store on the backend's database (closed with the backend)."""
    if backend.kind == "sqlite":
        from eventsource.snapshots.sqlite import SQLiteSnapshotStore

        inner: Any = SQLiteSnapshotStore(str(backend.path))
    else:
        from eventsource.snapshots.postgresql import PostgreSQLSnapshotStore

        inner = PostgreSQLSnapshotStore(backend.engine)
    made = PersonalSnapshotStore(inner, backend.personal, {"Order": OrderState})
    backend.closing.append(made.close)
    return made


def state_of(order: Order) -> OrderState:
    assert order.state is not None
    return order.state


def repository(backend: Backend, snapshots: PersonalSnapshotStore) -> AggregateRepository[Order]:
    return AggregateRepository(
        backend.store, Order, "Order", snapshot_store=snapshots, snapshot_threshold=1
    )


async def test_tables_hold_no_plaintext_while_every_read_returns_it(backend: Backend) -> None:
    order_id = uuid4()
    snapshots = snapshots_of(backend)
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    repo = repository(backend, snapshots)
    order = await repo.load(order_id)
    order.pay(5)
    await repo.save(order)  # takes a snapshot of the state, which holds both names

    dump = await backend.dump()
    assert "pii:1:" in dump
    assert "OrderPlaced" in dump
    assert '"snapshot' not in dump
    for plaintext in PLAINTEXTS:
        assert plaintext not in dump
    for event in await every_read(backend, order_id):
        assert (event.buyer_name, event.buyer_street, event.seller_name) == (
            NAME, STREET, SELLER_NAME
        )
        assert erased_fields(event) == frozenset()
    snapshot = await snapshots.get_snapshot(order_id, "Order")
    assert snapshot is not None
    assert snapshot.state["buyer_name"] == NAME
    assert state_of(await repo.load(order_id)).seller_name == SELLER_NAME


class Buyers(DeclarativeProjection):
    """A read model derived from buyers' personal data, dropped when a buyer is forgotten."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}

    @handles(OrderPlaced)
    async def _placed(self, event: OrderPlaced) -> None:
        self.rows[event.buyer_id] = event.buyer_name

    @handles(PersonalDataErased)
    async def _erased(self, event: PersonalDataErased) -> None:
        self.rows.pop(event.subject_id, None)

    async def _truncate_read_models(self) -> None:
        self.rows.clear()


async def test_forget_erases_one_subject_on_every_read_path(backend: Backend) -> None:
    order_id, other_order = uuid4(), uuid4()
    snapshots = snapshots_of(backend)
    repo = repository(backend, snapshots)
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    await backend.store.append_events(other_order, "Order", [placed(other_order, "buyer-2")], 0)
    order = await repo.load(order_id)
    order.pay(1)
    await repo.save(order)  # a snapshot with the buyer's name in it

    erased = await backend.personal.forget("buyer-1", backend.store)

    for event in await every_read(backend, order_id):
        assert event.buyer_name == "[erased]"
        assert event.buyer_street is None
        assert event.seller_name == SELLER_NAME  # the other subject of the same event
        assert erased_fields(event) == {"buyer_name", "buyer_street"}
    [intact] = (await backend.store.get_events(other_order, "Order")).events
    assert isinstance(intact, OrderPlaced)
    assert intact.buyer_name == NAME
    # The aggregate loads (from its snapshot, whose buyer name is replaced) and takes events.
    loaded = await repo.load(order_id)
    assert (state_of(loaded).buyer_name, state_of(loaded).seller_name) == ("", SELLER_NAME)
    loaded.pay(2)
    await repo.save(loaded)
    assert state_of(await repo.load(order_id)).paid == 3
    # A projection handling the system event deletes its row.
    buyers = Buyers()
    async for stored in backend.store.read_all():
        if isinstance(stored.event, OrderPlaced | PersonalDataErased):
            await buyers.handle(stored.event)
    assert buyers.rows == {"buyer-2": NAME}
    assert erased.subject_id == "buyer-1"

    # The subject's data cannot be written again until it is re-enrolled ...
    again = uuid4()
    with pytest.raises(SubjectErasedError, match="buyer-1"):
        await backend.store.append_events(again, "Order", [placed(again)], 0)
    assert (await backend.store.get_events(again, "Order")).events == []
    await backend.personal.enrol("buyer-1")
    await backend.store.append_events(again, "Order", [placed(again)], 0)
    [fresh] = (await backend.store.get_events(again, "Order")).events
    assert isinstance(fresh, OrderPlaced)
    assert fresh.buyer_name == NAME
    # ... and what was written before the erasure stays unreadable.
    [old] = (await backend.store.get_events(order_id, "Order", 0, None, None)).events[:1]
    assert isinstance(old, OrderPlaced)
    assert old.buyer_name == "[erased]"


async def test_forget_one_group_keeps_the_others(backend: Backend) -> None:
    order_id = uuid4()
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    await backend.personal.forget("buyer-1", backend.store, group="address")
    [event] = (await backend.store.get_events(order_id, "Order")).events
    assert isinstance(event, OrderPlaced)
    assert (event.buyer_name, event.buyer_street) == (NAME, None)
    assert erased_fields(event) == {"buyer_street"}


async def test_a_second_reader_sees_the_erasure(backend: Backend) -> None:
    """Another `PersonalData` on the same key tables (as another process has) with a warm
    cache: on PostgreSQL the NOTIFY evicts it (its time-to-live is an hour); on SQLite its
    time-to-live is the bound (here a short one)."""
    order_id = uuid4()
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    ttl = 3600.0 if backend.kind == "postgresql" else 0.05
    other = await backend.new_personal(cache_ttl=ttl)
    rows = await backend.query(
        f"SELECT event_type, payload FROM events WHERE aggregate_id = {backend.placeholder(1)}",
        str(order_id) if backend.kind == "sqlite" else order_id,
    )
    pairs = [(row[0], row[1]) for row in rows]
    keys = await other.keys_for_payloads(pairs, None)
    assert keys is not None  # the cache is warm now
    await backend.personal.forget("buyer-1")
    for _ in range(200):  # the NOTIFY arrives on the event loop; SQLite waits out the TTL
        keys = await other.keys_for_payloads(pairs, None)
        assert keys is not None
        with keys.active():
            event = decode_event(pairs[0][0], pairs[0][1], None)
        if erased_fields(event):
            break
        await asyncio.sleep(0.01)
    assert isinstance(event, OrderPlaced)
    assert event.buyer_name == "[erased]"
    await other.close()


@pytest.mark.parametrize(
    ("source", "target"),
    [("buyer_name", "buyer_street"), ("buyer_name", "seller_name")],
    ids=["between-fields", "between-subjects"],
)
async def test_swapped_ciphertexts_raise_an_integrity_error(
    backend: Backend, source: str, target: str
) -> None:
    order_id = uuid4()
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    p = backend.placeholder
    key = str(order_id) if backend.kind == "sqlite" else order_id
    [(payload,)] = await backend.query(
        f"SELECT payload FROM events WHERE aggregate_id = {p(1)}", key
    )
    data = json.loads(payload)
    data[source], data[target] = data[target], data[source]
    cast = "" if backend.kind == "sqlite" else "::jsonb"
    await backend.query(
        f"UPDATE events SET payload = {p(1)}{cast} WHERE aggregate_id = {p(2)}",
        json.dumps(data), key,
    )
    with pytest.raises(PersonalDataIntegrityError, match=source + "|" + target):
        await backend.store.get_events(order_id, "Order")


async def test_a_store_without_a_key_store_writes_nothing_and_reads_nothing(
    backend: Backend,
) -> None:
    order_id = uuid4()
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    backend.store._personal = None  # the same tables, no key store at hand
    with pytest.raises(KeyStoreUnavailableError):
        await backend.store.get_events(order_id, "Order")
    other = uuid4()
    with pytest.raises(KeyStoreUnavailableError, match="nothing was written"):
        await backend.store.append_events(other, "Order", [placed(other)], 0)
    [(count,)] = await backend.query("SELECT COUNT(*) FROM events")
    assert count == 1  # only the first append's row


async def test_kek_rotation_rewraps_keys_without_touching_events(backend: Backend) -> None:
    order_id = uuid4()
    await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
    before = await backend.dump("events")
    new_kek = LocalKEK(LocalKEK.generate(), "kek-2")
    assert await backend.personal.rotate_kek(new_kek) == 3  # two buyer groups, one seller
    assert await backend.dump("events") == before
    fresh = await backend.new_personal(new_kek)  # a process started with only the new KEK
    fresh.attach(backend.store)
    [event] = (await backend.store.get_events(order_id, "Order")).events
    assert isinstance(event, OrderPlaced)
    assert event.buyer_name == NAME
    await fresh.close()


async def test_forgetting_an_unknown_subject_is_refused(backend: Backend) -> None:
    with pytest.raises(UnknownSubjectError, match="nobody"):
        await backend.personal.forget("nobody", backend.store)
    with pytest.raises(UnknownSubjectError, match="nobody"):
        await backend.personal.enrol("nobody")
