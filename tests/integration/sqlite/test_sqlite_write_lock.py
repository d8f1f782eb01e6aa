"""Issue 12 item 9: appends and a slow `DatabaseProjection` writing to the same SQLite file.

SQLite lets one connection write at a time. A projection that kept the write lock for a whole
page of slow handlers stalled appends for seconds and failed them with "database is locked";
now its transactions end after `max_transaction_seconds` and it leaves the lock free for a
moment before taking it again, and an append fails only once it has waited `busy_timeout`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from eventsource import DomainEvent, register_event
from eventsource.exceptions import DatabaseLockedError
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.sqlite import SQLiteCheckpointRepository
from eventsource.stores.sqlite import SQLiteEventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager

BUSY_TIMEOUT_MS = 3000
PAGE = 600  # events of one page: ~3.6 s of handlers, longer than the busy timeout
_INSERT = text("INSERT INTO rm_ticks (id) VALUES (:id)")


@register_event
class LockTick(DomainEvent):
    event_type: str = "LockTick"
    aggregate_type: str = "LockClock"


@register_event
class LockNoise(DomainEvent):
    event_type: str = "LockNoise"
    aggregate_type: str = "LockNoise"


class SlowReadModel(DatabaseProjection):
    """Writes its row first, then takes its time: the write lock is held meanwhile."""

    @handles(LockTick)
    async def _on_tick(self, conn: Any, event: LockTick) -> None:
        await conn.execute(_INSERT, {"id": str(event.event_id)})
        await asyncio.sleep(0.006)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[tuple[SQLiteEventStore, Any]]:
    path = str(tmp_path / "events.db")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with SQLiteEventStore(path, busy_timeout=BUSY_TIMEOUT_MS) as store:
            await store.initialize()
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE rm_ticks (id TEXT PRIMARY KEY)"))
            yield store, async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


class Appenders:
    """Tasks appending single events until stopped, each append timed; failures kept."""

    def __init__(self, stores: list[SQLiteEventStore]) -> None:
        self.stalls: list[float] = []
        self.failures: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._append(store)) for store in stores]

    async def _append(self, store: SQLiteEventStore) -> None:
        stream, version = uuid4(), 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await store.append_events(
                    stream, "LockNoise", [LockNoise(aggregate_id=stream)], version
                )
                version += 1
            except Exception as exc:  # every failure is a finding
                self.failures.append(exc)
            self.stalls.append(time.monotonic() - started)
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def _fill(store: SQLiteEventStore) -> None:
    clock = uuid4()
    ticks = [LockTick(aggregate_id=clock) for _ in range(PAGE)]
    await store.append_events(clock, "LockClock", ticks, 0)


async def _run_under_manager(store: SQLiteEventStore, projection: SlowReadModel) -> None:
    manager = SubscriptionManager(store, None, projection.checkpoint_repo, enable_tracing=False)
    config = SubscriptionConfig(start_from="beginning", batch_size=PAGE)
    subscription = await manager.subscribe(projection, config)
    async with manager:
        while subscription.events_processed < PAGE:  # noqa: ASYNC110 - polls plain state
            await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("driver", ["handle_batch", "manager"])
async def test_appends_never_fail_while_a_slow_projection_writes(
    database: tuple[SQLiteEventStore, Any], driver: str
) -> None:
    store, sessions = database
    await _fill(store)
    events = [stored.event async for stored in store.read_all()]
    projection = SlowReadModel(sessions, SQLiteCheckpointRepository(store))
    # Appends through the store's own connections and through a second store, as from another
    # process (every call on its connection, which waits in SQLite's busy handler).
    other = SQLiteEventStore(store.database, busy_timeout=BUSY_TIMEOUT_MS, inline=False)
    async with other:
        appenders = Appenders([store, store, other])
        try:
            async with asyncio.timeout(60):
                if driver == "manager":
                    await _run_under_manager(store, projection)
                else:
                    await projection.handle_batch(events)
        finally:
            await appenders.stop()
    assert appenders.failures == []
    assert len(appenders.stalls) > 30
    assert max(appenders.stalls) < BUSY_TIMEOUT_MS / 1000
    async with sessions() as session:
        applied = (await session.execute(text("SELECT count(*) FROM rm_ticks"))).scalar_one()
    assert applied == PAGE
    data = await projection.checkpoint_repo.get_checkpoint_data(
        projection_name=projection.projection_name
    )
    assert data is not None
    assert data.events_processed == PAGE
    if driver == "handle_batch":  # (a subscription's row names the last event it read)
        assert data.last_event_id == events[-1].event_id


@pytest.mark.parametrize("inline", [True, False])
async def test_an_append_fails_typed_only_after_waiting_its_busy_timeout(
    tmp_path: Path, inline: bool
) -> None:
    path = str(tmp_path / "events.db")
    async with SQLiteEventStore(path, busy_timeout=400, inline=inline) as store:
        await store.initialize()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another connection keeps the write lock
        try:
            stream = uuid4()
            started = time.monotonic()
            with pytest.raises(DatabaseLockedError) as caught:
                await store.append_events(stream, "LockNoise", [LockNoise(aggregate_id=stream)], 0)
            waited = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert waited >= 0.35
        assert path in str(caught.value)
        assert "busy_timeout=400 ms" in str(caught.value)
        assert await store.get_stream_version(stream, "LockNoise") == 0
