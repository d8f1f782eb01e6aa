"""AggregateRepository over the in-memory stores (API.md §4, §8.4, §15 items 20-25, 39-41)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from eventsource import (
    AggregateNotFoundError,
    AggregateRepository,
    DeclarativeAggregate,
    DomainEvent,
    InMemoryEventStore,
    OptimisticLockError,
    handles,
    register_event,
)
from eventsource.snapshots import InMemorySnapshotStore, Snapshot, SnapshotStore


@register_event
class RepoDeposited(DomainEvent):
    event_type: str = "RepoDeposited"
    aggregate_type: str = "Account"
    amount: float


class AccountState(BaseModel):
    balance: float = 0.0
    transaction_count: int = 0


class Account(DeclarativeAggregate[AccountState]):
    aggregate_type = "Account"

    def _get_initial_state(self) -> AccountState:
        return AccountState()

    @handles(RepoDeposited)
    def _on_deposit(self, event: RepoDeposited) -> None:
        state = self._state or self._get_initial_state()
        self._state = AccountState(
            balance=state.balance + event.amount, transaction_count=state.transaction_count + 1
        )

    def deposit(self, amount: float) -> None:
        self.apply_event(
            RepoDeposited(
                aggregate_id=self.aggregate_id,
                amount=amount,
                aggregate_version=self.get_next_version(),
            )
        )


class AccountV2(Account):
    """A new state schema that does not know how to read v1 snapshots."""

    schema_version = 2


class MigratingAccount(Account):
    """A new state schema that migrates v1 snapshots itself (tutorial 21's pattern)."""

    schema_version = 2
    migrated_from: int | None = None

    def _restore_from_snapshot(self, state_dict: dict[str, Any], schema_version: int) -> None:
        self.migrated_from = schema_version
        if schema_version == 1:
            state_dict = {**state_dict, "transaction_count": state_dict["legacy_count"]}
        super()._restore_from_snapshot(state_dict, schema_version)


class BrokenRestoreAccount(Account):
    def _restore_from_snapshot(self, state_dict: dict[str, Any], schema_version: int) -> None:
        raise ValueError("cannot read this snapshot")


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[list[DomainEvent]] = []
        self.fail = fail

    async def publish(self, events: list[DomainEvent]) -> None:
        self.published.append(events)
        if self.fail:
            raise RuntimeError("broker down")


class FailingSnapshotStore(InMemorySnapshotStore):
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        raise RuntimeError("disk full")

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        raise RuntimeError("disk gone")


def repository(
    store: InMemoryEventStore | None = None, factory: Any = Account, **kw: Any
) -> AggregateRepository[Any]:
    return AggregateRepository(store or InMemoryEventStore(), factory, "Account", **kw)


def snapshot(
    account_id: UUID, version: int, state: dict[str, Any], schema_version: int = 1
) -> Snapshot:
    return Snapshot(account_id, "Account", version, state, schema_version, datetime.now(UTC))


async def test_create_new_stores_nothing() -> None:
    store = InMemoryEventStore()
    repo = repository(store)
    account = repo.create_new(uuid4())
    assert (account.version, account.state) == (0, None)
    assert await store.get_event_count() == 0
    assert (repo.aggregate_type, repo.event_store, repo.event_publisher) == ("Account", store, None)
    assert repo.snapshot_store is None
    assert (repo.snapshot_threshold, repo.snapshot_mode) == (None, "sync")
    assert not repo.has_snapshot_support


async def test_save_and_load() -> None:
    store = InMemoryEventStore()
    repo = repository(store)
    account = repo.create_new(uuid4())
    account.deposit(10)
    assert (account.version, len(account.uncommitted_events)) == (1, 1)
    await repo.save(account)
    assert (account.version, len(account.uncommitted_events)) == (1, 0)
    loaded = await repo.load(account.aggregate_id)
    assert (loaded.version, loaded.state, loaded.uncommitted_events) == (
        1,
        AccountState(balance=10, transaction_count=1),
        [],
    )
    assert await repo.exists(account.aggregate_id)
    assert await repo.get_version(account.aggregate_id) == 1
    assert (await repo.get_or_raise(account.aggregate_id)).version == 1


async def test_save_without_changes_does_nothing() -> None:
    publisher = RecordingPublisher()
    store = InMemoryEventStore()
    repo = repository(store, event_publisher=publisher)
    await repo.save(repo.create_new(uuid4()))
    assert await store.get_event_count() == 0
    assert publisher.published == []


async def test_unknown_aggregate() -> None:
    repo = repository()
    unknown = uuid4()
    with pytest.raises(AggregateNotFoundError) as caught:
        await repo.load(unknown)
    assert (caught.value.aggregate_id, caught.value.aggregate_type) == (unknown, "Account")
    assert str(caught.value) == f"Aggregate of type Account not found: {unknown}"
    assert not await repo.exists(unknown)
    assert await repo.get_version(unknown) == 0
    created = await repo.load_or_create(unknown)
    assert (created.version, created.state) == (0, None)


async def test_concurrent_saves_conflict_then_retry() -> None:
    repo = repository()
    account = repo.create_new(uuid4())
    account.deposit(1)
    await repo.save(account)
    first, second = await repo.load(account.aggregate_id), await repo.load(account.aggregate_id)
    first.deposit(10)
    second.deposit(20)
    await repo.save(first)
    assert first.version == 2
    with pytest.raises(OptimisticLockError) as caught:
        await repo.save(second)
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert caught.value.aggregate_id == account.aggregate_id
    assert len(second.uncommitted_events) == 1  # kept for the caller
    retry = await repo.load(account.aggregate_id)
    retry.deposit(20)
    await repo.save(retry)
    final = await repo.load(account.aggregate_id)
    assert final.version == 3
    assert final.state == AccountState(balance=31, transaction_count=3)


async def test_several_commands_are_saved_atomically() -> None:
    store = InMemoryEventStore()
    repo = repository(store)
    account = repo.create_new(uuid4())
    for amount in (1, 2, 3):
        account.deposit(amount)
    await repo.save(account)
    stream = await store.get_events(account.aggregate_id, "Account")
    assert [e.aggregate_version for e in stream.events] == [1, 2, 3]
    assert await store.get_global_position() == 3
    again = await repo.load(account.aggregate_id)
    again.deposit(4)
    await repo.save(again)
    again = await repo.load(account.aggregate_id)
    again.deposit(5)
    await repo.save(again)
    assert (await repo.load(account.aggregate_id)).version == 5


async def test_publisher_receives_the_stored_events() -> None:
    publisher = RecordingPublisher()
    store = InMemoryEventStore()
    repo = repository(store, event_publisher=publisher)
    account = repo.create_new(uuid4())
    account.deposit(1)
    account.deposit(2)
    pending = account.uncommitted_events
    await repo.save(account)
    assert len(publisher.published) == 1
    assert all(a is b for a, b in zip(publisher.published[0], pending, strict=True))
    stored = (await store.get_events(account.aggregate_id, "Account")).events
    assert all(a is b for a, b in zip(stored, pending, strict=True))


async def test_publisher_failure_propagates_after_storing() -> None:
    store = InMemoryEventStore()
    repo = repository(store, event_publisher=RecordingPublisher(fail=True))
    account = repo.create_new(uuid4())
    account.deposit(1)
    with pytest.raises(RuntimeError, match="broker down"):
        await repo.save(account)
    assert await store.get_event_count() == 1
    assert account.uncommitted_events == []
    assert (await repo.load(account.aggregate_id)).version == 1


async def test_constructor_validates_snapshot_settings() -> None:
    with pytest.raises(ValueError, match="snapshot_mode"):
        repository(snapshot_mode="sometimes")
    with pytest.raises(ValueError, match="snapshot_threshold"):
        repository(snapshot_threshold=0)


# -- snapshots (§8.4) -------------------------------------------------------------------------


async def test_snapshots_on_threshold_crossings_one_event_per_save() -> None:
    snapshots = InMemorySnapshotStore()
    repo = repository(snapshot_store=snapshots, snapshot_threshold=10)
    account_id = uuid4()
    versions: list[int] = []
    for _ in range(26):
        account = await repo.load_or_create(account_id)
        account.deposit(1)
        await repo.save(account)
        found = await snapshots.get_snapshot(account_id, "Account")
        if found is not None and (not versions or versions[-1] != found.version):
            versions.append(found.version)
    assert versions == [10, 20]
    final = await snapshots.get_snapshot(account_id, "Account")
    assert final is not None
    assert (final.version, final.schema_version, final.aggregate_type) == (20, 1, "Account")
    assert final.state == {"balance": 20.0, "transaction_count": 20}
    assert (await repo.load(account_id)).version == 26


async def test_one_big_save_crosses_the_threshold_sync() -> None:
    snapshots = InMemorySnapshotStore()
    repo = repository(snapshot_store=snapshots, snapshot_threshold=10)
    account = repo.create_new(uuid4())
    for _ in range(16):
        account.deposit(1)
    await repo.save(account)
    found = await snapshots.get_snapshot(account.aggregate_id, "Account")
    assert found is not None
    assert found.version == 16
    assert await repo.await_pending_snapshots() == 0


async def test_background_snapshots() -> None:
    snapshots = InMemorySnapshotStore()
    repo = repository(snapshot_store=snapshots, snapshot_threshold=10, snapshot_mode="background")
    account = repo.create_new(uuid4())
    for _ in range(16):
        account.deposit(1)
    await repo.save(account)
    assert await repo.await_pending_snapshots() == 1
    assert repo.pending_snapshot_count == 0
    found = await snapshots.get_snapshot(account.aggregate_id, "Account")
    assert found is not None
    assert found.version == 16


async def test_manual_snapshots() -> None:
    snapshots = InMemorySnapshotStore()
    repo = repository(snapshot_store=snapshots, snapshot_threshold=10, snapshot_mode="manual")
    account = repo.create_new(uuid4())
    for _ in range(16):
        account.deposit(1)
    await repo.save(account)
    assert snapshots.snapshot_count == 0
    made = await repo.create_snapshot(account)
    assert made.version == 16
    assert await snapshots.get_snapshot(account.aggregate_id, "Account") == made


async def test_no_threshold_no_automatic_snapshots() -> None:
    snapshots = InMemorySnapshotStore()
    repo = repository(snapshot_store=snapshots)
    account = repo.create_new(uuid4())
    for _ in range(30):
        account.deposit(1)
    await repo.save(account)
    assert snapshots.snapshot_count == 0
    with pytest.raises(RuntimeError):
        await repository().create_snapshot(account)


async def test_load_starts_from_the_snapshot() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    repo = repository(store, snapshot_store=snapshots)
    account = repo.create_new(uuid4())
    for _ in range(5):
        account.deposit(1)
    await repo.save(account)
    # a snapshot at v3 whose state differs from the replay: proves it was used
    await snapshots.save_snapshot(
        snapshot(account.aggregate_id, 3, {"balance": 100.0, "transaction_count": 3})
    )
    loaded = await repo.load(account.aggregate_id)
    assert loaded.version == 5
    assert loaded.state == AccountState(balance=102, transaction_count=5)


async def test_snapshot_without_events_is_enough_to_load() -> None:
    snapshots = InMemorySnapshotStore()
    repo = repository(snapshot_store=snapshots)
    account_id = uuid4()
    await snapshots.save_snapshot(snapshot(account_id, 4, {"balance": 4.0, "transaction_count": 4}))
    loaded = await repo.load(account_id)
    assert (loaded.version, loaded.state) == (4, AccountState(balance=4, transaction_count=4))


async def test_other_schema_version_is_ignored_and_replayed() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    writer = repository(store, snapshot_store=snapshots, snapshot_threshold=5)
    account = writer.create_new(uuid4())
    for _ in range(10):
        account.deposit(20)
    await writer.save(account)
    old = await snapshots.get_snapshot(account.aggregate_id, "Account")
    assert old is not None
    assert old.schema_version == 1
    await snapshots.save_snapshot(
        snapshot(account.aggregate_id, 10, {"balance": -1.0, "transaction_count": -1})
    )
    reader = repository(store, factory=AccountV2, snapshot_store=snapshots)
    loaded = await reader.load(account.aggregate_id)
    assert loaded.state == AccountState(balance=200.0, transaction_count=10)
    assert loaded.version == 10


async def test_newer_schema_snapshot_is_ignored_even_with_override() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    repo = repository(store, factory=MigratingAccount, snapshot_store=snapshots)
    account = repo.create_new(uuid4())
    account.deposit(1)
    await repo.save(account)
    await snapshots.save_snapshot(
        snapshot(account.aggregate_id, 1, {"balance": 9.0, "legacy_count": 9}, schema_version=3)
    )
    loaded = await repo.load(account.aggregate_id)
    assert loaded.migrated_from is None
    assert loaded.state == AccountState(balance=1, transaction_count=1)


async def test_overriding_restore_migrates_older_snapshots() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    repo = repository(store, factory=MigratingAccount, snapshot_store=snapshots)
    account_id = uuid4()
    await snapshots.save_snapshot(
        snapshot(account_id, 2, {"balance": 50.0, "legacy_count": 2}, schema_version=1)
    )
    loaded = await repo.load(account_id)
    assert loaded.migrated_from == 1
    assert (loaded.version, loaded.state) == (2, AccountState(balance=50, transaction_count=2))
    direct = MigratingAccount(account_id)
    direct._restore_from_snapshot({"balance": 1.0, "legacy_count": 7}, schema_version=1)
    assert direct.state == AccountState(balance=1, transaction_count=7)


async def test_failing_restore_falls_back_to_full_replay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    repo = repository(store, factory=BrokenRestoreAccount, snapshot_store=snapshots)
    account = repo.create_new(uuid4())
    for _ in range(3):
        account.deposit(5)
    await repo.save(account)
    await snapshots.save_snapshot(snapshot(account.aggregate_id, 2, {"balance": 0.0}))
    with caplog.at_level(logging.WARNING, logger="eventsource.aggregates.repository"):
        loaded = await repo.load(account.aggregate_id)
    assert (loaded.version, loaded.state) == (3, AccountState(balance=15, transaction_count=3))
    assert caplog.records


async def test_snapshot_store_failures_never_fail_load_or_save() -> None:
    store = InMemoryEventStore()
    failing: SnapshotStore = FailingSnapshotStore()
    repo = repository(store, snapshot_store=failing, snapshot_threshold=1)
    account = repo.create_new(uuid4())
    account.deposit(1)
    await repo.save(account)
    loaded = await repo.load(account.aggregate_id)
    assert loaded.version == 1
