"""The synchronous API on real PostgreSQL: many threads saving with conflicts retried, typed
errors, snapshots and checkpoints in the store's database."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from _sync_support import (
    SyncIncremented,
    counter,
    pg_engine_options,
    portal,
    raised_in,
    stale_save,
)

from eventsource import DomainEvent, OptimisticLockError
from eventsource.sync import (
    Portal,
    SyncAggregateRepository,
    SyncEventStore,
    SyncSnapshotStore,
    SyncSubscriptionRunner,
)

__all__ = ["pg_engine_options", "portal"]  # fixtures, imported for pytest


pytestmark = pytest.mark.postgresql

THREADS = 16
SAVES = 1000  # per thread
AGGREGATES = 32  # shared by all threads, so saves conflict


@pytest.mark.slow
def test_sixteen_threads_save_every_change_exactly_once(
    pg_url: str, pg_engine_options: dict[str, Any], portal: Portal
) -> None:
    store = SyncEventStore.postgresql(pg_url, engine_options=pg_engine_options, portal=portal)
    repo = SyncAggregateRepository(store, counter, "SyncCounter")
    ids = [uuid.uuid4() for _ in range(AGGREGATES)]
    conflicts = [0] * THREADS
    failures: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def writer(number: int) -> None:
        try:
            barrier.wait()
            for seq in range(SAVES):
                aggregate_id = ids[(number * 7 + seq) % AGGREGATES]
                while True:  # the decide-and-save loop: on a conflict load again and redo
                    aggregate = repo.load_or_create(aggregate_id)
                    aggregate.increment(number, seq)
                    try:
                        repo.save(aggregate)
                        break
                    except OptimisticLockError:
                        conflicts[number] += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    assert failures == []
    stored = store.read_all()
    saves = Counter((s.event.writer, s.event.seq) for s in stored
                    if isinstance(s.event, SyncIncremented))
    assert len(stored) == THREADS * SAVES
    assert set(saves) == {(n, seq) for n in range(THREADS) for seq in range(SAVES)}
    assert max(saves.values()) == 1  # every save exactly once
    for aggregate_id in ids:
        stream = store.get_events(aggregate_id, "SyncCounter")
        versions = [e.aggregate_version for e in stream.events]
        assert versions == list(range(1, len(versions) + 1))
        loaded = repo.load(aggregate_id)
        assert loaded.state is not None
        assert loaded.state.count == loaded.version == len(versions)
    assert sum(conflicts) > 0  # the retry path really ran
    print(f"\n{THREADS * SAVES} saves, {sum(conflicts)} conflicts retried, {elapsed:.1f} s")


def test_errors_keep_their_types_on_postgresql(
    pg_url: str, pg_engine_options: dict[str, Any], portal: Portal
) -> None:
    store = SyncEventStore.postgresql(pg_url, engine_options=pg_engine_options, portal=portal)
    _, error = stale_save(SyncAggregateRepository(store, counter, "SyncCounter"))
    assert any(f.endswith("eventsource/stores/postgresql.py") for f in raised_in(error))


def test_snapshots_and_checkpoints_beside_a_postgresql_store(
    pg_url: str, pg_engine_options: dict[str, Any], portal: Portal
) -> None:
    store = SyncEventStore.postgresql(pg_url, engine_options=pg_engine_options, portal=portal)
    snapshots = SyncSnapshotStore.beside(store)
    repo = SyncAggregateRepository(
        store, counter, "SyncCounter", snapshot_store=snapshots, snapshot_threshold=2
    )
    aggregate = repo.create_new(uuid.uuid4())
    aggregate.increment()
    aggregate.increment()
    repo.save(aggregate)
    snapshot = snapshots.get_snapshot(aggregate.aggregate_id, "SyncCounter")
    assert snapshot is not None
    assert snapshot.version == 2

    seen: list[uuid.UUID] = []

    class Seen:
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [SyncIncremented]

        def handle(self, event: DomainEvent) -> None:
            seen.append(event.event_id)

    runner = SyncSubscriptionRunner(store)
    runner.subscribe(Seen(), name="seen")
    with runner:
        assert runner.wait_until_caught_up(timeout=30)
    assert len(seen) == 2
    position = store.run(_checkpoint_of_seen)
    assert position == store.get_global_position()


async def _checkpoint_of_seen(store: Any) -> int | None:
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository

    return await PostgreSQLCheckpointRepository(store.session_factory).get_position("seen")
