"""Reading: filters and their bounds, round trips, registries, empty streams, read APIs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from eventsource.events.registry import EventRegistry
from eventsource.stores.interface import EventStore, ReadDirection, ReadOptions
from eventsource.testing.contract._store_support import (
    CART,
    ContractCartClosed,
    ContractItemAdded,
    ContractItemAddedV2,
    StoreContractBase,
    StoreFactory,
    added,
    added_many,
    at,
    everything,
    ids,
)


class ReadContract(StoreContractBase):
    """The rules of every read method."""

    # -- filters ----------------------------------------------------------------------------

    async def test_from_version(self, store: EventStore) -> None:
        cart = uuid4()
        batch = added_many(cart, 4)
        await store.append_events(cart, CART, batch, expected_version=0)
        after_two = await store.get_events(cart, CART, from_version=2)
        assert (ids(after_two.events), after_two.version) == (ids(batch[2:]), 4)
        at_end = await store.get_events(cart, CART, from_version=4)
        assert (at_end.events, at_end.version) == ([], 4)
        beyond = await store.get_events(cart, CART, from_version=9)
        assert (beyond.events, beyond.version) == ([], 9)

    async def test_get_events_time_bounds_are_inclusive(self, store: EventStore) -> None:
        cart = uuid4()
        batch = added_many(cart, 5)  # occurred at at(1) .. at(5)
        await store.append_events(cart, CART, batch, expected_version=0)
        middle = await store.get_events(cart, CART, from_timestamp=at(2), to_timestamp=at(4))
        assert (ids(middle.events), middle.version) == (ids(batch[1:4]), 4)
        since = await store.get_events(cart, CART, from_timestamp=at(5))
        assert ids(since.events) == ids(batch[4:])
        until = await store.get_events(cart, CART, to_timestamp=at(1))
        assert (ids(until.events), until.version) == (ids(batch[:1]), 1)
        both = await store.get_events(cart, CART, from_version=2, from_timestamp=at(2))
        assert ids(both.events) == ids(batch[2:])

    async def test_read_all_time_bounds_are_inclusive(self, store: EventStore) -> None:
        one, two = uuid4(), uuid4()
        first = [added(one, occurred_at=at(s)) for s in (1, 3, 5)]
        second = [added(two, occurred_at=at(s)) for s in (2, 4)]
        await store.append_events(one, CART, first, 0)
        await store.append_events(two, CART, second, 0)
        found = await store.read_all(ReadOptions(from_timestamp=at(2), to_timestamp=at(4)))
        assert ids(found.events) == [first[1].event_id, second[0].event_id, second[1].event_id]

    async def test_get_events_by_type(self, store: EventStore) -> None:
        tenant, other_tenant = uuid4(), uuid4()
        one, two, elsewhere = uuid4(), uuid4(), uuid4()
        # appended out of time order: results must be by occurred_at
        e3 = added(one, occurred_at=at(3), tenant_id=tenant)
        e1 = added(two, occurred_at=at(1), tenant_id=other_tenant)
        e2 = ContractCartClosed(aggregate_id=one, occurred_at=at(2), tenant_id=tenant)
        e4 = added(two, occurred_at=at(4))
        await store.append_events(one, CART, [e3], 0)
        await store.append_events(two, CART, [e1], 0)
        await store.append_events(one, CART, [e2], 1)
        await store.append_events(two, CART, [e4], 1)
        await store.append_events(elsewhere, "Order", [added(elsewhere, occurred_at=at(2))], 0)
        assert ids(await store.get_events_by_type(CART)) == ids([e1, e2, e3, e4])
        assert ids(await store.get_events_by_type(CART, tenant_id=tenant)) == ids([e2, e3])
        after_two = await store.get_events_by_type(CART, from_timestamp=at(2))
        assert ids(after_two) == ids([e3, e4])  # exclusive bound
        assert ids(await store.get_events_by_type(CART, tenant, at(2))) == ids([e3])
        assert isinstance((await store.get_events_by_type(CART))[1], ContractCartClosed)
        assert await store.get_events_by_type("Nothing") == []

    async def test_get_events_by_type_accepts_float_epoch(self, store: EventStore) -> None:
        cart = uuid4()
        batch = added_many(cart, 3)
        await store.append_events(cart, CART, batch, 0)
        with pytest.warns(DeprecationWarning, match="(?i)deprecat"):
            found = await store.get_events_by_type(CART, from_timestamp=at(2).timestamp())
        assert ids(found) == ids(batch[2:])

    async def test_get_events_without_type(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, [added(cart)], 0)
        stream = await store.get_events(cart)
        assert (stream.aggregate_type, stream.version, len(stream.events)) == (CART, 1, 1)
        await store.append_events(cart, "Wishlist", [added(cart)], 0)
        await store.append_events(cart, CART, [added(cart)], 1)
        merged = await store.get_events(cart)
        stored = await everything(store)
        assert ids(merged.events) == ids(stored)  # both streams, in global order

    # -- round trip and registry -------------------------------------------------------------

    async def test_envelope_and_payload_round_trip(self, store: EventStore) -> None:
        cart, tenant, cause = uuid4(), uuid4(), uuid4()
        event = added(
            cart,
            "sku-ü",
            quantity=3,
            price=Decimal("19.99"),
            tenant_id=tenant,
            actor_id="user:42",
            causation_id=cause,
            event_version=2,
            aggregate_version=1,
            occurred_at=datetime(2023, 6, 1, 8, 30, 15, 123456, tzinfo=UTC),
            metadata={
                "source": "api",
                "n": 1,
                "ratio": 0.5,
                "ok": True,
                "none": None,
                "nested": {"list": [1, "two", {"three": 3}]},
            },
        )
        await store.append_events(cart, CART, [event], 0)
        reads = [
            (await store.get_events(cart, CART)).events[0],
            (await everything(store))[0].event,
            (await store.get_events_by_type(CART))[0],
            (await store.read_stream(str(cart))).events[0].event,
        ]
        for read in reads:
            assert isinstance(read, ContractItemAdded)
            assert type(read) is ContractItemAdded
            assert read == event
            assert read.occurred_at == event.occurred_at
            assert read.occurred_at.utcoffset() == timedelta(0)
            assert isinstance(read.price, Decimal)

    async def test_reads_fall_back_to_the_default_registry(
        self, store_factory: StoreFactory
    ) -> None:
        async with store_factory(EventRegistry()) as store:
            cart = uuid4()
            events = [added(cart), ContractCartClosed(aggregate_id=cart, aggregate_version=2)]
            await store.append_events(cart, CART, events, 0)
            read = (await store.get_events(cart, CART)).events
            assert [type(e) for e in read] == [ContractItemAdded, ContractCartClosed]
            assert read == events

    async def test_the_stores_registry_wins(self, store_factory: StoreFactory) -> None:
        registry = EventRegistry()
        registry.register(ContractItemAddedV2, "ContractItemAdded")
        async with store_factory(registry) as store:
            cart = uuid4()
            event = added(cart)
            await store.append_events(cart, CART, [event], 0)
            read = (await store.get_events(cart, CART)).events[0]
            expected = ContractItemAddedV2 if self.deserialises_events else ContractItemAdded
            assert type(read) is expected
            assert read.event_id == event.event_id

    # -- empty streams ----------------------------------------------------------------------

    async def test_unknown_stream_is_empty(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, [added(cart)], 0)
        unknown = uuid4()
        stream = await store.get_events(unknown, "Whatever")
        assert (stream.aggregate_id, stream.aggregate_type, stream.version) == (
            unknown,
            "Whatever",
            0,
        )
        assert stream.is_empty
        assert stream.latest_event is None
        assert (await store.get_events(unknown)).aggregate_type == "Unknown"
        assert (await store.read_stream(f"{unknown}:Whatever")).events == []
        assert (await store.read_stream(str(unknown))).events == []

    # -- read_all / read_stream ---------------------------------------------------------------

    async def test_read_all_directions_limits_and_positions(self, store: EventStore) -> None:
        one, two = uuid4(), uuid4()
        await store.append_events(one, CART, added_many(one, 3), 0)
        await store.append_events(two, CART, added_many(two, 2), 0)
        await store.append_events(one, CART, added_many(one, 1, 4), 3)
        stored = await everything(store)
        positions = [s.global_position for s in stored]
        assert [(s.aggregate_id, s.stream_position) for s in stored] == [
            (one, 1),
            (one, 2),
            (one, 3),
            (two, 1),
            (two, 2),
            (one, 4),
        ]
        assert stored[3].stream_id == f"{two}:{CART}"
        assert stored[0].event_type == "ContractItemAdded"
        assert stored[0].aggregate_type == CART
        assert stored[0].stored_at.tzinfo is not None

        async def read(**options: Any) -> list[int]:
            result = await store.read_all(ReadOptions(**options))
            return [s.global_position for s in result.events]

        backward = ReadDirection.BACKWARD
        assert await read() == positions
        assert await read(limit=2) == positions[:2]
        assert await read(limit=0) == []
        assert await read(from_position=positions[2]) == positions[3:]
        assert await read(from_position=positions[2], limit=2) == positions[3:5]
        assert await read(from_position=positions[-1]) == []
        assert await read(direction=backward) == positions[::-1]
        assert await read(direction=backward, limit=2) == positions[::-1][:2]
        assert await read(direction=backward, from_position=positions[3]) == positions[:3:-1]
        iterated = [s.global_position async for s in store.read_all()]
        assert iterated == positions

    async def test_read_stream(self, store: EventStore) -> None:
        cart = uuid4()
        batch = added_many(cart, 4)
        await store.append_events(cart, CART, batch, 0)
        await store.append_events(cart, "Wishlist", [added(cart)], 0)
        name = f"{cart}:{CART}"

        async def read(stream_id: str = name, **options: Any) -> list[int]:
            result = await store.read_stream(stream_id, ReadOptions(**options))
            return [s.stream_position for s in result.events]

        assert await read() == [1, 2, 3, 4]
        assert await read(limit=2) == [1, 2]
        assert await read(from_position=2) == [3, 4]
        assert await read(direction=ReadDirection.BACKWARD) == [4, 3, 2, 1]
        assert await read(direction=ReadDirection.BACKWARD, limit=3) == [4, 3, 2]
        assert await read(direction=ReadDirection.BACKWARD, from_position=2) == [4, 3]
        iterated = [s async for s in store.read_stream(name)]
        assert ids(iterated) == ids(batch)
        assert {s.stream_id for s in iterated} == {name}
        any_type = await store.read_stream(str(cart))
        assert len(any_type.events) == 5
        assert {s.stream_id for s in any_type.events} == {name, f"{cart}:Wishlist"}

    async def test_read_committed_pages_through_everything(self, store: EventStore) -> None:
        carts = [uuid4() for _ in range(3)]
        for cart in carts:
            await store.append_events(cart, CART, added_many(cart, 8), 0)
        expected = ids(await everything(store))
        assert await store.committed_lag(None) == 24
        seen, cursor = await _read_committed_until(store, None, len(expected), limit=5)
        assert seen == expected
        assert await store.committed_lag(cursor) == 0
        cart = carts[0]
        late = added(cart, "late")
        await store.append_events(cart, CART, [late], 8)
        assert await store.committed_lag(cursor) == 1
        seen, cursor = await _read_committed_until(store, cursor, 1, limit=5)
        assert seen == [late.event_id]
        assert await store.committed_lag(cursor) == 0


async def _read_committed_until(
    store: EventStore, cursor: str | None, count: int, limit: int
) -> tuple[list[UUID], str | None]:
    """Page through `read_committed` until `count` events came, then until a page is empty.

    On PostgreSQL a committed event becomes readable once no older transaction of the cluster
    is still open (e.g. a moment's auto-analyze), so an empty page may come first: wait a bit.
    """
    seen: list[UUID] = []
    async with asyncio.timeout(15):
        while True:
            page = await store.read_committed(cursor, limit=limit)
            assert len(page.events) <= limit
            seen.extend(ids(page.events))
            cursor = page.cursor
            if not page.events:
                if len(seen) >= count:
                    return seen, cursor
                await asyncio.sleep(0.02)
