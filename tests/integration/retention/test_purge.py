"""The purge job on a real SQLite file and the real PostgreSQL: concurrent writers and a lagging
guarded subscription (issue 18 item 5), positions never reused, truncation with snapshots."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from _retention_support import (
    Noted,
    append,
    next_position,
    read,
    sqlite_store,
    store_fixture,  # noqa: F401  (the `store` fixture)
)
from pydantic import BaseModel

from eventsource import AggregateRepository, DeclarativeAggregate, DomainEvent, handles
from eventsource.repositories.checkpoint import InMemoryCheckpointRepository
from eventsource.retention import (
    PurgeAlreadyRunningError,
    PurgeJob,
    RetentionRule,
    SnapshotRequiredError,
    StreamRetention,
)
from eventsource.retention._backend import backend_for
from eventsource.snapshots import InMemorySnapshotStore
from eventsource.stores.base import RowEventStore
from eventsource.stores.interface import EventStore
from eventsource.stores.records import ExpectedVersion

WRITERS = 8


async def test_a_lagging_guarded_subscription_receives_every_event_once(
    store: EventStore,
) -> None:
    retention = StreamRetention(store)
    streams = [uuid4() for _ in range(WRITERS)]
    for stream in streams:  # short streams: the purge has work on every one
        await append(store, stream, 1)
        await retention.set_rule(stream, "Note", RetentionRule(max_count=1))
    checkpoints = InMemoryCheckpointRepository()
    writing = True
    appended: list[UUID] = []
    received: list[UUID] = []

    async def writer(stream: UUID) -> None:
        for version in range(1, 31):
            event = Noted(aggregate_id=stream, text=str(version + 1))
            await store.append_events(stream, "Note", [event], version)
            appended.append(event.event_id)

    async def subscription() -> None:  # reads small pages slowly, then saves its cursor
        cursor = None
        while True:
            page = await store.read_committed(cursor, limit=7)
            received.extend(stored.event_id for stored in page.events)
            if page.events:
                last = page.events[-1]
                await checkpoints.save_position(
                    "guarded", last.global_position, last.event_id, last.event_type,
                    cursor=page.cursor,
                )
            elif not writing and not await store.committed_lag(cursor):
                return  # caught up (an empty page may only mean commits wait behind others)
            cursor = page.cursor
            await asyncio.sleep(0.01)

    purged = 0

    async def purger() -> None:
        nonlocal purged
        job = PurgeJob(store, checkpoints=checkpoints, guarded=["guarded"], batch_size=5)
        while writing:
            purged += (await job.run()).events
            await asyncio.sleep(0.005)

    reader = asyncio.create_task(subscription())
    purging = asyncio.create_task(purger())
    await asyncio.gather(*(writer(stream) for stream in streams))
    writing = False
    await purging
    await reader
    final = await PurgeJob(store, checkpoints=checkpoints, guarded=["guarded"]).run()
    before = {stored.event_id async for stored in store.read_all()}
    assert purged + final.events > 0
    assert len(received) == len(set(received))  # exactly once
    assert set(appended) <= set(received)  # every event, none deleted unread
    assert set(received) >= before
    for stream in streams:  # each stream keeps its newest event
        assert await read(store, stream) == ([31], 31)


async def test_guarded_events_wait_until_the_maximum_delay(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    stream = uuid4()
    await append(store, stream, 4)
    await StreamRetention(store).set_rule(stream, "Note", RetentionRule(max_count=1))
    checkpoints = InMemoryCheckpointRepository()  # the guarded subscription read nothing
    held = await PurgeJob(store, checkpoints=checkpoints, guarded=["slow"]).run()
    assert held.events == 0
    later = PurgeJob(
        store, checkpoints=checkpoints, guarded=["slow"], max_delay=timedelta(0),
    )
    with caplog.at_level(logging.ERROR, logger="eventsource.retention.purge"):
        done = await later.run()
    assert (done.events, done.overdue) == (3, 3)
    assert "had not processed" in caplog.text
    assert "slow" in caplog.text


async def test_one_runner_at_a_time(store: EventStore) -> None:
    job = PurgeJob(store)
    await job._acquire()  # a runner is mid-purge
    with pytest.raises(PurgeAlreadyRunningError):
        await PurgeJob(store).run()
    await job.run()  # the holder itself goes on (and releases)
    await PurgeJob(store).run()


async def test_sqlite_never_reuses_a_deleted_newest_position(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with sqlite_store(path) as store:
        await append(store, uuid4(), 3)
        newest = await store.get_global_position()
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM events WHERE id = ?", (newest,))
        assert await next_position(store) > newest


async def test_sqlite_table_without_autoincrement_keeps_its_newest_row(tmp_path: Path) -> None:
    """A table made without AUTOINCREMENT (by hand, or an older tool) would hand a deleted
    maximum position out again: the purge keeps the newest row of such a table."""
    path = tmp_path / "legacy.db"
    from eventsource.migrations import get_schema

    with sqlite3.connect(path) as db:
        db.executescript(get_schema("events", "sqlite").replace(" AUTOINCREMENT", ""))
    async with sqlite_store(path) as store:
        stream = uuid4()
        await append(store, stream, 3)
        newest = await store.get_global_position()
        with sqlite3.connect(path) as db:  # tombstoned without a system event after it
            db.execute(
                "INSERT INTO stream_metadata (aggregate_id, aggregate_type, state, updated_at)"
                " VALUES (?, 'Note', 'tombstoned', '')", (str(stream),),
            )
        assert await backend_for(store).keep_below() == newest
        assert (await PurgeJob(store).run()).events == 2
        assert await next_position(store) > newest


class Added(DomainEvent):
    event_type: str = "Added"
    aggregate_type: str = "Counter"
    amount: int = 1


class Total(BaseModel):
    total: int = 0


class Counter(DeclarativeAggregate[Total]):
    aggregate_type = "Counter"

    def _get_initial_state(self) -> Total:
        return Total()

    @handles(Added)
    def _on_added(self, event: Added) -> None:
        self._state = Total(total=(self._state or Total()).total + event.amount)


async def test_truncating_an_aggregate_needs_a_snapshot_and_it_loads_the_same(
    store: EventStore,
) -> None:
    assert isinstance(store, RowEventStore)
    store.event_registry.register(Added)
    snapshots = InMemorySnapshotStore()
    repository: AggregateRepository[Any] = AggregateRepository(
        store, Counter, "Counter", snapshot_store=snapshots, snapshot_mode="manual"
    )
    counter = uuid4()
    await store.append_events(counter, "Counter", [
        Added(aggregate_id=counter, amount=n, aggregate_version=n) for n in range(1, 6)
    ], ExpectedVersion.NO_STREAM)
    retention = StreamRetention(store)
    with pytest.raises(SnapshotRequiredError):
        await retention.truncate_before(counter, "Counter", 4, repository=repository)
    await retention.truncate_before(
        counter, "Counter", 4, repository=repository, take_snapshot=True
    )
    assert (await store.get_events(counter, "Counter")).version == 5
    assert [e.aggregate_version for e in (await store.get_events(counter, "Counter")).events] \
        == [4, 5]
    await PurgeJob(store).run()
    loaded = await repository.load(counter)
    assert (loaded.version, loaded.state.total) == (5, 15)
