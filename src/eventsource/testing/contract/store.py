"""`EventStoreContract`: the behaviour every `EventStore` backend must show (API.md §3, §15).

Subclass it in a test module (name the subclass `Test...`) and provide two fixtures:

* `store`: a fresh, empty, open store;
* `store_factory`: a callable `(event_registry) -> async context manager` opening another fresh,
  empty store that deserialises with `event_registry`.

Class attributes describe what a backend legitimately does differently; override them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, register_event
from eventsource.exceptions import (
    EventStoreError,
    OptimisticLockError,
    SerializationError,
)
from eventsource.stores.interface import (
    EventStore,
    ExpectedVersion,
    ReadDirection,
    ReadOptions,
    StoredEvent,
)

__all__ = ["ContractCartClosed", "ContractItemAdded", "EventStoreContract", "StoreFactory"]

StoreFactory = Callable[[EventRegistry | None], AbstractAsyncContextManager[EventStore]]

CART = "ContractCart"
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@register_event
class ContractItemAdded(DomainEvent):
    """An item put into a cart (the contract's main event type)."""

    event_type: str = "ContractItemAdded"
    aggregate_type: str = CART
    sku: str
    quantity: int = 1
    price: Decimal = Decimal("0")


@register_event
class ContractCartClosed(DomainEvent):
    """A cart closed (a second event type)."""

    event_type: str = "ContractCartClosed"
    aggregate_type: str = CART
    reason: str = ""


class ContractItemAddedV2(ContractItemAdded):
    """Registered only in per-test registries, under the name of `ContractItemAdded`."""


class ContractNeverRegistered(DomainEvent):
    """Deliberately in no registry: durable stores cannot rebuild it."""

    event_type: str = "ContractNeverRegistered"
    aggregate_type: str = CART


def at(seconds: float) -> datetime:
    """A fixed instant, so time filters do not depend on the clock."""
    return T0 + timedelta(seconds=seconds)


def added(aggregate_id: UUID, sku: str = "sku", **fields: Any) -> ContractItemAdded:
    return ContractItemAdded(aggregate_id=aggregate_id, sku=sku, **fields)


def added_many(aggregate_id: UUID, count: int, first_version: int = 1) -> list[ContractItemAdded]:
    return [
        added(aggregate_id, f"sku-{v}", aggregate_version=v, occurred_at=at(v))
        for v in range(first_version, first_version + count)
    ]


def ids(events: Sequence[DomainEvent | StoredEvent]) -> list[UUID]:
    return [e.event_id for e in events]


async def everything(store: EventStore) -> list[StoredEvent]:
    return (await store.read_all()).events


async def fingerprint(store: EventStore) -> tuple[int, list[tuple[UUID, str, int, int]]]:
    """What a failed call must leave unchanged."""
    rows = [
        (s.event_id, s.stream_id, s.stream_position, s.global_position)
        for s in await everything(store)
    ]
    return await store.get_global_position(), rows


class EventStoreContract:
    """Subclass and provide `store` and `store_factory` fixtures (see the module docstring)."""

    gap_free_positions: ClassVar[bool] = True
    """Global positions are 1, 2, 3, ... (a sequence-based backend may skip numbers)."""
    rejects_unserialisable_payload: ClassVar[bool] = True
    """Appending an event without a JSON form raises SerializationError (memory keeps objects)."""
    deserialises_events: ClassVar[bool] = True
    """Reads rebuild events from stored JSON (memory returns the appended objects)."""
    concurrent_writers: ClassVar[int] = 16

    # -- versions and expected versions ---------------------------------------------------

    async def test_empty_store(self, store: EventStore) -> None:
        assert await store.get_global_position() == 0
        assert await everything(store) == []
        assert await store.get_stream_version(uuid4(), CART) == 0
        assert not await store.event_exists(uuid4())

    async def test_first_and_second_append(self, store: EventStore) -> None:
        cart = uuid4()
        first = await store.append_events(cart, CART, [added(cart)], expected_version=0)
        assert (first.success, first.new_version, first.global_position, first.conflict) == (
            True,
            1,
            1,
            False,
        )
        second = await store.append_events(
            cart, CART, [added(cart, aggregate_version=2)], expected_version=1
        )
        assert (second.success, second.new_version, second.global_position) == (True, 2, 2)
        assert await store.get_stream_version(cart, CART) == 2

    async def test_get_events_after_one_append(self, store: EventStore) -> None:
        cart = uuid4()
        event = added(cart)
        await store.append_events(cart, CART, [event], expected_version=0)
        stream = await store.get_events(cart, CART)
        assert (stream.aggregate_id, stream.aggregate_type, stream.version) == (cart, CART, 1)
        assert stream.events == [event]
        assert not stream.is_empty
        assert stream.latest_event == event

    async def test_batch_takes_consecutive_positions(self, store: EventStore) -> None:
        cart = uuid4()
        batch = added_many(cart, 3)
        result = await store.append_events(cart, CART, batch, expected_version=0)
        assert result.new_version == 3
        stored = await everything(store)
        assert [s.stream_position for s in stored] == [1, 2, 3]
        assert result.global_position == stored[-1].global_position
        assert ids(stored) == ids(batch)

    async def test_no_stream(self, store: EventStore) -> None:
        cart = uuid4()
        result = await store.append_events(
            cart, CART, [added(cart)], expected_version=ExpectedVersion.NO_STREAM
        )
        assert result.new_version == 1
        with pytest.raises(OptimisticLockError) as caught:
            await store.append_events(
                cart, CART, [added(cart)], expected_version=ExpectedVersion.NO_STREAM
            )
        assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)

    async def test_any_appends_to_new_and_existing_streams(self, store: EventStore) -> None:
        cart = uuid4()
        for expected_new_version in (1, 2, 3):
            result = await store.append_events(
                cart, CART, [added(cart)], expected_version=ExpectedVersion.ANY
            )
            assert result.new_version == expected_new_version

    async def test_stream_exists(self, store: EventStore) -> None:
        cart = uuid4()
        with pytest.raises(OptimisticLockError) as caught:
            await store.append_events(
                cart, CART, [added(cart)], expected_version=ExpectedVersion.STREAM_EXISTS
            )
        error = caught.value
        assert (error.aggregate_id, error.expected_version, error.actual_version) == (cart, -2, 0)
        assert await store.get_global_position() == 0
        await store.append_events(cart, CART, [added(cart)], expected_version=0)
        result = await store.append_events(
            cart, CART, [added(cart)], expected_version=ExpectedVersion.STREAM_EXISTS
        )
        assert result.new_version == 2

    async def test_stale_version_is_rejected_and_nothing_appended(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, added_many(cart, 2), expected_version=0)
        before = await fingerprint(store)
        late = added(cart, "late")
        with pytest.raises(OptimisticLockError) as caught:
            await store.append_events(cart, CART, [late], expected_version=1)
        error = caught.value
        assert (error.aggregate_id, error.expected_version, error.actual_version) == (cart, 1, 2)
        assert str(error) == (
            f"Optimistic lock error for aggregate {cart}: "
            "expected version 1, but current version is 2"
        )
        assert await fingerprint(store) == before
        assert not await store.event_exists(late.event_id)

    async def test_version_ahead_of_stream_is_rejected(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, [added(cart)], expected_version=0)
        with pytest.raises(OptimisticLockError) as caught:
            await store.append_events(cart, CART, [added(cart)], expected_version=5)
        assert (caught.value.expected_version, caught.value.actual_version) == (5, 1)
        assert await store.get_stream_version(cart, CART) == 1

    async def test_empty_batch_is_a_no_op_without_check(self, store: EventStore) -> None:
        cart = uuid4()
        result = await store.append_events(cart, CART, [], expected_version=7)
        assert (result.success, result.new_version) == (True, 7)
        assert await store.get_global_position() == 0
        assert await store.get_stream_version(cart, CART) == 0

    async def test_streams_are_keyed_by_id_and_type(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, [added(cart)], expected_version=0)
        result = await store.append_events(cart, "Wishlist", [added(cart)], expected_version=0)
        assert result.new_version == 1
        assert await store.get_stream_version(cart, CART) == 1
        assert await store.get_stream_version(cart, "Wishlist") == 1

    async def test_aggregate_type_argument_is_authoritative(self, store: EventStore) -> None:
        cart = uuid4()
        event = added(cart)  # its own aggregate_type is ContractCart
        await store.append_events(cart, "Basket", [event], expected_version=0)
        assert ids((await store.get_events(cart, "Basket")).events) == [event.event_id]
        assert (await store.get_events(cart, CART)).is_empty
        assert ids(await store.get_events_by_type("Basket")) == [event.event_id]
        assert await store.get_events_by_type(CART) == []
        assert [s.stream_id for s in await everything(store)] == [f"{cart}:Basket"]

    async def test_event_aggregate_version_is_kept_as_given(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, [added(cart, aggregate_version=7)], 0)
        stored = (await store.read_stream(f"{cart}:{CART}")).events
        assert [(s.stream_position, s.event.aggregate_version) for s in stored] == [(1, 7)]

    # -- positions and order ----------------------------------------------------------------

    async def test_global_positions_increase_across_streams(self, store: EventStore) -> None:
        carts = [uuid4() for _ in range(3)]
        appended: list[UUID] = []
        last_result_position = 0
        for round_number in range(3):
            for cart in carts:
                batch = [added(cart, f"r{round_number}-{i}") for i in range(round_number + 1)]
                result = await store.append_events(cart, CART, batch, ExpectedVersion.ANY)
                assert result.global_position > last_result_position
                last_result_position = result.global_position
                appended.extend(ids(batch))
        stored = await everything(store)
        positions = [s.global_position for s in stored]
        assert ids(stored) == appended
        assert positions[0] >= 1
        assert all(a < b for a, b in itertools.pairwise(positions))
        if self.gap_free_positions:
            assert positions == list(range(1, len(appended) + 1))
        assert await store.get_global_position() == positions[-1] == last_result_position

    async def test_stream_comes_back_in_version_order(self, store: EventStore) -> None:
        cart, other = uuid4(), uuid4()
        for version in range(1, 6):
            # occurred_at runs backwards: order must follow versions, not timestamps
            await store.append_events(
                cart,
                CART,
                [added(cart, aggregate_version=version, occurred_at=at(-version))],
                expected_version=version - 1,
            )
            await store.append_events(other, CART, [added(other)], ExpectedVersion.ANY)
        stream = await store.get_events(cart, CART)
        assert [e.aggregate_version for e in stream.events] == [1, 2, 3, 4, 5]
        stored = (await store.read_stream(f"{cart}:{CART}")).events
        assert [s.stream_position for s in stored] == [1, 2, 3, 4, 5]

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

    # -- duplicates -------------------------------------------------------------------------

    async def test_duplicate_event_id_is_skipped(self, store: EventStore) -> None:
        cart = uuid4()
        event = added(cart)
        await store.append_events(cart, CART, [event], 0)
        result = await store.append_events(cart, CART, [event], 1)
        assert (result.success, result.new_version) == (True, 1)
        assert result.global_position == await store.get_global_position()
        assert await store.event_exists(event.event_id)
        assert ids(await everything(store)) == [event.event_id]
        fresh = added(cart)
        mixed = await store.append_events(cart, CART, [event, fresh], 1)
        assert mixed.new_version == 2
        assert ids((await store.get_events(cart, CART)).events) == [event.event_id, fresh.event_id]

    async def test_duplicate_still_checks_version_first(self, store: EventStore) -> None:
        cart = uuid4()
        event = added(cart)
        await store.append_events(cart, CART, [event, added(cart)], 0)
        with pytest.raises(OptimisticLockError) as caught:
            await store.append_events(cart, CART, [event], expected_version=0)
        assert caught.value.actual_version == 2

    async def test_duplicate_inside_one_batch(self, store: EventStore) -> None:
        cart = uuid4()
        event = added(cart)
        twin = added(cart, "twin", event_id=event.event_id)
        result = await store.append_events(cart, CART, [event, twin, added(cart)], 0)
        assert result.new_version == 2
        stream = await store.get_events(cart, CART)
        assert stream.events[0] == event  # the first of the twins is kept
        assert len(stream.events) == 2

    async def test_event_id_is_unique_across_streams(self, store: EventStore) -> None:
        one, two = uuid4(), uuid4()
        event = added(one)
        await store.append_events(one, CART, [event], 0)
        copy = added(two, event_id=event.event_id)
        await store.append_events(two, CART, [copy], 0)
        assert await store.get_stream_version(two, CART) == 0
        assert ids(await everything(store)) == [event.event_id]

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

    async def test_unregistered_type_fails_on_read_naming_the_event(
        self, store: EventStore
    ) -> None:
        cart = uuid4()
        event = ContractNeverRegistered(aggregate_id=cart)
        await store.append_events(cart, CART, [event], 0)
        if not self.deserialises_events:
            assert (await store.get_events(cart, CART)).events == [event]
            return
        with pytest.raises(EventStoreError) as caught:
            await store.get_events(cart, CART)
        assert str(event.event_id) in str(caught.value)
        assert "ContractNeverRegistered" in str(caught.value)

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
        seen: list[UUID] = []
        cursor: str | None = None
        for _ in range(10):
            page = await store.read_committed(cursor, limit=5)
            cursor = page.cursor
            if not page.events:
                break
            assert len(page.events) <= 5
            seen.extend(ids(page.events))
        assert seen == expected
        assert await store.committed_lag(cursor) == 0
        cart = carts[0]
        late = added(cart, "late")
        await store.append_events(cart, CART, [late], 8)
        assert await store.committed_lag(cursor) == 1
        page = await store.read_committed(cursor, limit=5)
        assert ids(page.events) == [late.event_id]
        assert await store.committed_lag(page.cursor) == 0

    # -- bad input: a typed error naming the problem, the store unchanged --------------------

    async def test_event_of_another_aggregate_is_rejected(self, store: EventStore) -> None:
        cart, stranger = uuid4(), uuid4()
        await store.append_events(cart, CART, [added(cart)], 0)
        before = await fingerprint(store)
        with pytest.raises(ValueError, match=str(stranger)) as caught:
            await store.append_events(cart, CART, [added(stranger)], 1)
        assert str(cart) in str(caught.value)
        assert await fingerprint(store) == before

    async def test_non_event_is_rejected(self, store: EventStore) -> None:
        cart = uuid4()
        bad: Any = {"sku": "not an event"}
        with pytest.raises(TypeError, match=r"events\[0\].*dict"):
            await store.append_events(cart, CART, [bad], 0)
        assert await fingerprint(store) == (0, [])

    async def test_expected_version_below_minus_two_is_rejected(self, store: EventStore) -> None:
        cart = uuid4()
        with pytest.raises(ValueError, match="-3"):
            await store.append_events(cart, CART, [added(cart)], expected_version=-3)
        assert await fingerprint(store) == (0, [])

    async def test_aggregate_id_must_be_a_uuid(self, store: EventStore) -> None:
        cart = uuid4()
        bad_id: Any = str(cart)
        with pytest.raises(TypeError, match="aggregate_id"):
            await store.append_events(bad_id, CART, [added(cart)], 0)
        assert await fingerprint(store) == (0, [])

    async def test_unserialisable_payload(self, store: EventStore) -> None:
        cart = uuid4()
        event = added(cart, metadata={"handle": object()})
        if not self.rejects_unserialisable_payload:
            await store.append_events(cart, CART, [event], 0)
            assert (await store.get_events(cart, CART)).events == [event]
            return
        with pytest.raises(SerializationError) as caught:
            await store.append_events(cart, CART, [event], 0)
        assert caught.value.event_type == "ContractItemAdded"
        assert str(event.event_id) in str(caught.value)
        assert await fingerprint(store) == (0, [])

    async def test_batch_failing_part_way_writes_nothing(self, store: EventStore) -> None:
        cart = uuid4()
        await store.append_events(cart, CART, [added(cart)], 0)
        before = await fingerprint(store)
        not_an_event: Any = "third"
        bad_thirds: list[tuple[Any, type[Exception]]] = [
            (not_an_event, TypeError),
            (added(uuid4()), ValueError),
        ]
        if self.rejects_unserialisable_payload:
            bad_thirds.append((added(cart, metadata={"x": object()}), SerializationError))
        for third, error in bad_thirds:
            batch = [added(cart, "a"), added(cart, "b"), third, added(cart, "d")]
            with pytest.raises(error):
                await store.append_events(cart, CART, batch, 1)
            assert await fingerprint(store) == before
            assert not await store.event_exists(batch[0].event_id)

    # -- concurrency --------------------------------------------------------------------------

    async def test_racing_writers_one_winner_per_version(self, store: EventStore) -> None:
        cart = uuid4()
        for version in range(3):
            outcomes = await asyncio.gather(
                *(
                    store.append_events(cart, CART, [added(cart, f"w{n}")], version)
                    for n in range(self.concurrent_writers)
                ),
                return_exceptions=True,
            )
            losers = [o for o in outcomes if isinstance(o, OptimisticLockError)]
            winners = [o for o in outcomes if not isinstance(o, BaseException)]
            assert len(winners) == 1, outcomes
            assert len(losers) == self.concurrent_writers - 1, outcomes
            assert winners[0].new_version == version + 1
            assert {(e.expected_version, e.actual_version) for e in losers} == {
                (version, version + 1)
            }
        assert await store.get_stream_version(cart, CART) == 3

    async def test_retrying_writers_all_get_in(self, store: EventStore) -> None:
        cart = uuid4()
        conflicts: list[OptimisticLockError] = []

        async def write_once(n: int) -> None:
            while True:
                version = await store.get_stream_version(cart, CART)
                try:
                    await store.append_events(cart, CART, [added(cart, f"w{n}")], version)
                except OptimisticLockError as exc:
                    conflicts.append(exc)
                else:
                    return

        await asyncio.gather(*(write_once(n) for n in range(self.concurrent_writers)))
        stored = (await store.read_stream(f"{cart}:{CART}")).events
        assert [s.stream_position for s in stored] == list(range(1, self.concurrent_writers + 1))
        skus = sorted(getattr(s.event, "sku", "") for s in stored)
        assert skus == sorted(f"w{n}" for n in range(self.concurrent_writers))
        for exc in conflicts:  # the stream was ahead of what the loser had read
            assert exc.expected_version < exc.actual_version <= self.concurrent_writers

    async def test_concurrent_writers_on_distinct_streams(self, store: EventStore) -> None:
        carts = [uuid4() for _ in range(self.concurrent_writers)]
        await asyncio.gather(*(store.append_events(c, CART, added_many(c, 2), 0) for c in carts))
        stored = await everything(store)
        positions = [s.global_position for s in stored]
        assert len(set(positions)) == len(positions) == 2 * len(carts)
        assert positions == sorted(positions)
        for cart in carts:
            assert await store.get_stream_version(cart, CART) == 2
