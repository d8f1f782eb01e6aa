"""Issue 12 item 9: a `DatabaseProjection` ends a transaction that has lasted
`max_transaction_seconds` between two events, and its checkpoint then says exactly where: a
subscription resuming from it, or going on event by event after a later failure, applies every
event once and nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from projection_crash_child import READ_MODEL, CrashCounter, CrashTick, open_backend, register
from sqlalchemy import text

from eventsource.events.base import DomainEvent
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager

TOTAL = 40
CUT = 0.05  # max_transaction_seconds: a few events of SlowCounter


class SlowCounter(CrashCounter):
    @handles(CrashTick)
    async def _on_tick(self, conn: Any, event: CrashTick) -> None:
        await super()._on_tick(conn, event)
        await asyncio.sleep(0.01)


class FlakyCounter(SlowCounter):
    """Fails once on one event, after its first transactions were cut by time."""

    flaky: str = ""

    @handles(CrashTick)
    async def _on_tick(self, conn: Any, event: CrashTick) -> None:
        if str(event.event_id) == self.flaky:
            self.flaky = ""
            raise RuntimeError("transient failure")
        await super()._on_tick(conn, event)


@asynccontextmanager
async def _ticks_stored(backend: str, location: str) -> AsyncIterator[tuple[Any, ...]]:
    """The backend with TOTAL ticks stored and an empty read model; also yields the ticks."""
    register()
    async with open_backend(backend, location) as (store, sessions, checkpoints):
        clock = uuid4()
        ticks = [CrashTick(aggregate_id=clock, n=n) for n in range(TOTAL)]
        await store.append_events(clock, "CrashClock", ticks, 0)
        async with sessions() as session, session.begin():
            await session.execute(text(READ_MODEL))
        yield store, sessions, checkpoints, ticks


async def _run_subscription(
    store: EventStore, projection: DatabaseProjection, config: SubscriptionConfig, events: int
) -> None:
    manager = SubscriptionManager(store, None, projection.checkpoint_repo, enable_tracing=False)
    subscription = await manager.subscribe(projection, config)
    async with manager, asyncio.timeout(60):
        while subscription.events_processed < events:
            assert subscription.last_error is None
            await asyncio.sleep(0.02)


async def _assert_each_applied_once(
    sessions: Any, projection: DatabaseProjection, ticks: list[DomainEvent]
) -> None:
    async with sessions() as session:
        rows = dict((await session.execute(text("SELECT * FROM rm_applied"))).all())
    assert sorted(rows) == sorted(str(tick.event_id) for tick in ticks)
    assert set(rows.values()) == {1}
    data = await projection.checkpoint_repo.get_checkpoint_data(
        projection_name=projection.projection_name
    )
    assert data is not None
    assert (data.last_event_id, data.events_processed) == (ticks[-1].event_id, TOTAL)


async def _check_cut_and_resume(backend: str, location: str) -> None:
    async with _ticks_stored(backend, location) as (store, sessions, checkpoints, ticks):
        page = await store.read_committed(None, TOTAL)
        first = SlowCounter(sessions, checkpoints, max_transaction_seconds=CUT)
        applied = await first.commit_batch(
            [stored.event for stored in page.events],
            position=page.events[-1].global_position, cursor=page.cursor,
            positions=[stored.global_position for stored in page.events],
        )
        assert 1 <= applied < TOTAL
        data = await checkpoints.get_checkpoint_data(projection_name="SlowCounter")
        assert data is not None
        assert data.global_position == page.events[applied - 1].global_position
        assert (data.last_event_id, data.events_processed) == (ticks[applied - 1].event_id, applied)

        second = SlowCounter(sessions, checkpoints, max_transaction_seconds=CUT)
        config = SubscriptionConfig(start_from="checkpoint", batch_size=15)
        await _run_subscription(store, second, config, TOTAL - applied)
        await _assert_each_applied_once(sessions, second, ticks)


async def _check_failure_after_a_cut(backend: str, location: str) -> None:
    """A page whose later transaction fails goes on one event at a time from where the cut
    transactions ended (each event's cursor read from there)."""
    async with _ticks_stored(backend, location) as (store, sessions, checkpoints, ticks):
        projection = FlakyCounter(sessions, checkpoints, max_transaction_seconds=CUT)
        projection.flaky = str(ticks[-3].event_id)
        config = SubscriptionConfig(start_from="beginning", batch_size=TOTAL)
        await _run_subscription(store, projection, config, TOTAL)
        assert not projection.flaky  # it did fail once
        await _assert_each_applied_once(sessions, projection, ticks)


CHECKS: list[Callable[[str, str], Awaitable[None]]] = [
    _check_cut_and_resume, _check_failure_after_a_cut
]


@pytest.mark.parametrize("check", CHECKS)
async def test_sqlite(tmp_path: Path, check: Callable[[str, str], Awaitable[None]]) -> None:
    await check("sqlite", str(tmp_path / "events.db"))


@pytest.mark.postgresql
@pytest.mark.parametrize("check", CHECKS)
async def test_postgresql(
    pg_url: str, pg_schema: str, check: Callable[[str, str], Awaitable[None]]
) -> None:
    await check("postgresql", f"{pg_url} {pg_schema}")


def test_max_transaction_seconds_must_be_positive() -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="max_transaction_seconds must be"):
            DatabaseProjection(None, max_transaction_seconds=bad)
