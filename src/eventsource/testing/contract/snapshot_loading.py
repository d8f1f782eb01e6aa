"""`SnapshotLoadingContract`: `AggregateRepository` over a snapshot store.

Subclass (name it `Test...`) and provide a `snapshot_store` fixture (a fresh, empty store). The
events live in a `CountingEventStore` (in memory), which records how many events each read
returned, so the tests can assert that a load read only the tail after the snapshot.

Repository decisions checked here: a snapshot of an OLDER schema version that the aggregate
cannot read (no `_restore_from_snapshot` override), or one whose restore raised, is ignored, and
the load that replayed everything replaces it at once when the repository has a threshold, is
not in manual mode and the aggregate has reached the threshold (otherwise the next save that
crosses a threshold replaces it). A NEWER schema version is left alone (a rolling deploy's new
code still reads it). A restore that raises half-way leaves nothing behind: the load starts over
on a fresh aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec
from uuid import uuid4

import pytest
from pydantic import BaseModel

from eventsource.aggregates.base import DeclarativeAggregate
from eventsource.aggregates.repository import AggregateRepository, SnapshotMode
from eventsource.events.base import DomainEvent
from eventsource.events.registry import register_event
from eventsource.projections.decorators import handles
from eventsource.snapshots.interface import Snapshot, SnapshotStore
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.interface import EventStream

__all__ = [
    "LEDGER",
    "CountingEventStore",
    "Ledger",
    "LedgerDeposited",
    "LedgerState",
    "SnapshotLoadingContract",
]

LEDGER = "ContractLedger"
_P = ParamSpec("_P")


@register_event
class LedgerDeposited(DomainEvent):
    event_type: str = "ContractLedgerDeposited"
    aggregate_type: str = LEDGER
    amount: int


class LedgerState(BaseModel):
    balance: int = 0
    deposits: int = 0
    last_amounts: list[int] = []


class Ledger(DeclarativeAggregate[LedgerState]):
    aggregate_type = LEDGER

    def _get_initial_state(self) -> LedgerState:
        return LedgerState()

    @handles(LedgerDeposited)
    def _on_deposit(self, event: LedgerDeposited) -> None:
        state = self._state or self._get_initial_state()
        self._state = LedgerState(
            balance=state.balance + event.amount,
            deposits=state.deposits + 1,
            last_amounts=[*state.last_amounts[-2:], event.amount],
        )

    def deposit(self, amount: int) -> None:
        self.apply_event(
            LedgerDeposited(
                aggregate_id=self.aggregate_id,
                aggregate_version=self.get_next_version(),
                amount=amount,
            )
        )


class LedgerV2(Ledger):
    """A new state schema that cannot read version-1 snapshots."""

    schema_version = 2


class HalfRestoringLedger(Ledger):
    """Restoring sets part of the state, then fails."""

    leaked: bool = False

    def _restore_from_snapshot(self, state_dict: dict[str, Any], schema_version: int) -> None:
        self._state = LedgerState(balance=-1_000_000, deposits=-1)
        self._version = 999_999
        self.leaked = True
        raise ValueError("the stored state no longer fits")


def _counted(
    read: Callable[Concatenate[InMemoryEventStore, _P], Coroutine[Any, Any, EventStream]],
) -> Callable[Concatenate[CountingEventStore, _P], Coroutine[Any, Any, EventStream]]:
    """`read` (the store's `get_events`, whose signature it keeps), recording each result's
    number of events in `reads`."""

    async def counted(
        store: CountingEventStore, /, *args: _P.args, **kwargs: _P.kwargs
    ) -> EventStream:
        stream = await read(store, *args, **kwargs)
        store.reads.append(len(stream.events))
        return stream

    return counted


class CountingEventStore(InMemoryEventStore):
    """An in-memory event store that records how many events each `get_events` returned."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    get_events = _counted(InMemoryEventStore.get_events)


def _expected_state(amounts: list[int]) -> LedgerState:
    return LedgerState(balance=sum(amounts), deposits=len(amounts), last_amounts=amounts[-3:])


async def _stored(snapshots: SnapshotStore, ledger: Ledger) -> Snapshot:
    """The ledger's stored snapshot (there must be one)."""
    snapshot = await snapshots.get_snapshot(ledger.aggregate_id, LEDGER)
    assert snapshot is not None
    return snapshot


async def _deposit(repo: AggregateRepository[Any], ledger: Ledger, amounts: list[int]) -> None:
    for amount in amounts:
        ledger.deposit(amount)
    await repo.save(ledger)


class SnapshotLoadingContract:
    """The repository's snapshot loading and replacement over any snapshot store."""

    @pytest.fixture
    def events(self) -> CountingEventStore:
        """The event store of each test: in memory, counting its reads."""
        return CountingEventStore()

    @staticmethod
    def repo(
        events: CountingEventStore,
        snapshots: SnapshotStore,
        factory: type[Ledger] = Ledger,
        threshold: int | None = None,
        mode: SnapshotMode = "sync",
    ) -> AggregateRepository[Any]:
        return AggregateRepository(
            events,
            factory,
            LEDGER,
            snapshot_store=snapshots,
            snapshot_threshold=threshold,
            snapshot_mode=mode,
        )

    async def test_load_reads_only_the_events_after_the_snapshot(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        repo = self.repo(events, snapshot_store)
        amounts = [n % 97 for n in range(10_000)]
        ledger = repo.create_new(uuid4())
        await _deposit(repo, ledger, amounts[:9_990])
        taken = await repo.create_snapshot(ledger)
        assert taken.version == 9_990
        await _deposit(repo, ledger, amounts[9_990:])
        events.reads.clear()
        loaded = await repo.load(ledger.aggregate_id)
        assert events.reads == [10]
        assert loaded.version == 10_000
        assert loaded.state == _expected_state(amounts)
        assert loaded.uncommitted_events == []

    async def test_outdated_schema_is_ignored_and_replaced_by_the_load(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        writer = self.repo(events, snapshot_store, threshold=100)
        ledger = writer.create_new(uuid4())
        amounts = list(range(250))
        for start in (0, 100, 200):
            await _deposit(writer, ledger, amounts[start : start + 100])
        old = await _stored(snapshot_store, ledger)
        assert (old.version, old.schema_version) == (200, 1)
        reader = self.repo(events, snapshot_store, factory=LedgerV2, threshold=100)
        events.reads.clear()
        loaded = await reader.load(ledger.aggregate_id)
        assert events.reads == [250]  # full replay
        assert (loaded.version, loaded.state) == (250, _expected_state(amounts))
        fresh = await _stored(snapshot_store, ledger)
        assert (fresh.version, fresh.schema_version) == (250, 2)
        assert fresh.state == loaded._serialize_state()
        events.reads.clear()
        again = await reader.load(ledger.aggregate_id)
        assert events.reads == [0]
        assert again.state == loaded.state

    async def test_background_mode_replaces_the_outdated_snapshot_in_a_task(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        writer = self.repo(events, snapshot_store, threshold=10)
        ledger = writer.create_new(uuid4())
        await _deposit(writer, ledger, [1] * 12)
        reader = self.repo(events, snapshot_store, LedgerV2, threshold=10, mode="background")
        loaded = await reader.load(ledger.aggregate_id)
        assert await reader.await_pending_snapshots() == 1
        fresh = await _stored(snapshot_store, ledger)
        assert (fresh.version, fresh.schema_version) == (loaded.version, 2)

    async def test_below_the_threshold_the_next_crossing_save_replaces_it(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        writer = self.repo(events, snapshot_store)
        ledger = writer.create_new(uuid4())
        await _deposit(writer, ledger, [5] * 5)
        await writer.create_snapshot(ledger)  # schema 1 at version 5
        reader = self.repo(events, snapshot_store, LedgerV2, threshold=10)
        loaded = await reader.load(ledger.aggregate_id)
        assert loaded.state == _expected_state([5] * 5)
        kept = await _stored(snapshot_store, ledger)
        assert (kept.version, kept.schema_version) == (5, 1)  # below the threshold: kept
        await _deposit(reader, loaded, [5] * 5)
        replaced = await _stored(snapshot_store, ledger)
        assert (replaced.version, replaced.schema_version) == (10, 2)
        events.reads.clear()
        assert (await reader.load(ledger.aggregate_id)).state == _expected_state([5] * 10)
        assert events.reads == [0]

    async def test_manual_mode_never_replaces_on_load(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        writer = self.repo(events, snapshot_store, threshold=3)
        ledger = writer.create_new(uuid4())
        await _deposit(writer, ledger, [1, 2, 3, 4])
        reader = self.repo(events, snapshot_store, LedgerV2, threshold=3, mode="manual")
        assert (await reader.load(ledger.aggregate_id)).state == _expected_state([1, 2, 3, 4])
        assert (await _stored(snapshot_store, ledger)).schema_version == 1

    async def test_a_newer_schema_snapshot_is_ignored_but_left_alone(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        newer = self.repo(events, snapshot_store, LedgerV2, threshold=4)
        ledger = newer.create_new(uuid4())
        await _deposit(newer, ledger, [7] * 4)
        older = self.repo(events, snapshot_store, threshold=4)
        events.reads.clear()
        loaded = await older.load(ledger.aggregate_id)
        assert events.reads == [4]
        assert loaded.state == _expected_state([7] * 4)
        assert (await _stored(snapshot_store, ledger)).schema_version == 2

    async def test_a_failing_restore_is_never_half_applied(
        self, snapshot_store: SnapshotStore, events: CountingEventStore
    ) -> None:
        writer = self.repo(events, snapshot_store)
        ledger = writer.create_new(uuid4())
        amounts = [3, 1, 4, 1, 5, 9, 2]
        await _deposit(writer, ledger, amounts[:5])
        await writer.create_snapshot(ledger)
        await _deposit(writer, ledger, amounts[5:])
        reader = self.repo(events, snapshot_store, HalfRestoringLedger, threshold=5)
        events.reads.clear()
        loaded = await reader.load(ledger.aggregate_id)
        assert events.reads == [2, 7]  # the tail after v5, then everything again
        assert loaded.leaked is False
        assert (loaded.version, loaded.state) == (7, _expected_state(amounts))
        assert loaded.uncommitted_events == []
        fresh = await _stored(snapshot_store, ledger)
        assert (fresh.version, fresh.state) == (7, loaded._serialize_state())
