"""Appending: versions, expected versions, positions, duplicates, bad input, concurrency."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from uuid import UUID, uuid4

import pytest

from eventsource.exceptions import OptimisticLockError, SerializationError
from eventsource.stores.interface import EventStore, ExpectedVersion
from eventsource.testing.contract._store_support import (
    CART,
    ContractNeverRegistered,
    StoreContractBase,
    added,
    added_many,
    at,
    everything,
    fingerprint,
    ids,
)


class AppendContract(StoreContractBase):
    """The rules of `append_events`."""

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

    async def test_unregistered_type_is_refused_naming_the_event(
        self, store: EventStore
    ) -> None:
        cart = uuid4()
        event = ContractNeverRegistered(aggregate_id=cart)
        with pytest.raises(SerializationError) as caught:
            await store.append_events(cart, CART, [added(cart), event], 0)
        assert str(event.event_id) in str(caught.value)
        assert "ContractNeverRegistered" in str(caught.value)
        assert await fingerprint(store) == (0, [])

    async def test_aggregate_type_no_database_stores_is_refused(self, store: EventStore) -> None:
        cart = uuid4()
        for aggregate_type in ("Cart\x00", "Cart\ud800"):
            with pytest.raises(ValueError, match="aggregate_type"):
                await store.append_events(cart, aggregate_type, [added(cart)], 0)
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
