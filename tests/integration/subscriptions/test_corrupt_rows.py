"""Issue 12, item 3: one unreadable row (an older release's, written by hand, corrupted) between
good ones, on a SQLite file and on PostgreSQL.

Reads raise `CorruptEventError` carrying the row's global position, after the events before it
(and, from `read_committed`, with the cursor past it). A subscription from the beginning hands
over the good events before and after the row and dead-letters the row with its raw payload and
the error (health degraded); with `on_corrupt_event="halt"` it stops at the row, saying so, and
its lag counts the row and everything after it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text
from subs_integration_helpers import fresh_schema, wait_until
from subscription_crash_child import READ_MODEL, AppliedRows, SubsCrashTick, open_backend, register

from eventsource import DomainEvent, register_event
from eventsource.exceptions import CorruptEventError
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.repositories.dlq import DLQEntry, DLQRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import (
    Subscription,
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)


@register_event
class CorruptProbe(DomainEvent):
    event_type: str = "CorruptProbe"
    aggregate_type: str = "Probe"
    n: int


InsertRaw = Callable[[str, str], Awaitable[UUID]]


@dataclass
class Backend:
    store: EventStore
    checkpoints: CheckpointRepository
    dlq: DLQRepository
    insert_raw: InsertRaw  # (event_type, payload text) -> the row's event id
    sessions: Any  # an SQLAlchemy session factory on the same database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with AsyncExitStack() as stack:
        if request.param == "postgresql":
            yield await _postgresql(request, stack)
        else:
            yield await _sqlite(str(tmp_path / "events.db"), stack)


async def _sqlite(path: str, stack: AsyncExitStack) -> Backend:
    from eventsource.repositories.sqlite import SQLiteDLQRepository
    from eventsource.stores.sqlite import SQLiteEventStore

    store, sessions, checkpoints = await stack.enter_async_context(open_backend("sqlite", path))

    async def insert_raw(event_type: str, payload: str) -> UUID:
        event_id = uuid4()
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(
                "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
                " timestamp, payload) VALUES (?, ?, ?, 'Probe', 1,"
                " '2025-01-01T00:00:00.000000+00:00', ?)",
                (str(event_id), event_type, str(uuid4()), payload),
            )
        conn.close()
        return event_id

    assert isinstance(store, SQLiteEventStore)
    return Backend(store, checkpoints, SQLiteDLQRepository(store), insert_raw, sessions)


async def _postgresql(request: pytest.FixtureRequest, stack: AsyncExitStack) -> Backend:
    import asyncpg

    from eventsource.repositories.postgresql import PostgreSQLDLQRepository

    url = request.getfixturevalue("pg_url")
    schema = await stack.enter_async_context(fresh_schema(url))
    store, sessions, checkpoints = await stack.enter_async_context(
        open_backend("postgresql", f"{url} {schema}")
    )

    async def insert_raw(event_type: str, payload: str) -> UUID:
        event_id = uuid4()
        conn = await asyncpg.connect(url, server_settings={"search_path": schema})
        try:
            await conn.execute(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,"
                " timestamp, payload) VALUES ($1, $2, 'Probe', $3, 1, now(), $4::jsonb)",
                event_id, uuid4(), event_type, payload,
            )
        finally:
            await conn.close()
        return event_id

    return Backend(store, checkpoints, PostgreSQLDLQRepository(sessions), insert_raw, sessions)


# (event type, payload): a type no release registers, and a payload the class rejects.
_UNKNOWN_TYPE = ("RetiredProbe", json.dumps({"n": 4, "note": "from an older release"}))
_INVALID_PAYLOAD = ("CorruptProbe", json.dumps({"n": "four"}))
KINDS = pytest.mark.parametrize(
    "kind", [_UNKNOWN_TYPE, _INVALID_PAYLOAD], ids=["unknown-type", "invalid-payload"]
)


async def _append(store: EventStore, numbers: range) -> list[UUID]:
    stream = uuid4()
    events = [CorruptProbe(aggregate_id=stream, n=n) for n in numbers]
    await store.append_events(stream, "Probe", events, 0)
    return [event.event_id for event in events]


async def _good_bad_good(backend: Backend, kind: tuple[str, str]) -> tuple[UUID, list[UUID]]:
    """Positions 1-3 good, 4 the unreadable row, 5-7 good."""
    before = await _append(backend.store, range(1, 4))
    bad = await backend.insert_raw(*kind)
    after = await _append(backend.store, range(5, 8))
    return bad, before + after


class Collector:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [CorruptProbe]

    async def handle(self, event: DomainEvent) -> None:
        assert isinstance(event, CorruptProbe)
        self.seen.append(event.n)


def _manager(backend: Backend, dlq: bool = True) -> SubscriptionManager:
    manager = SubscriptionManager(
        backend.store, None, backend.checkpoints, dlq_repo=backend.dlq if dlq else None,
        enable_tracing=False,
    )
    manager.poll_interval = 0.05
    return manager


async def _probe(
    backend: Backend, dlq: bool = True, **config: Any
) -> tuple[SubscriptionManager, Collector, Subscription]:
    """A manager with one subscription, "probe", of a `Collector` from the beginning."""
    manager, collector = _manager(backend, dlq), Collector()
    subscription = await manager.subscribe(
        collector, SubscriptionConfig(start_from="beginning", **config), name="probe"
    )
    return manager, collector, subscription


def _event_data(entry: DLQEntry) -> object:
    data = entry.event_data
    return data if isinstance(data, dict) else json.loads(data)


@KINDS
async def test_reads_raise_with_the_position_after_the_events_before(
    backend: Backend, kind: tuple[str, str]
) -> None:
    bad, _good = await _good_bad_good(backend, kind)
    seen: list[int] = []

    async def iterate() -> None:
        async for stored in backend.store.read_all():
            seen.append(stored.global_position)

    with pytest.raises(CorruptEventError) as caught:
        await iterate()
    assert seen == [1, 2, 3]
    error = caught.value
    assert (error.position, str(error.event_id), error.event_type) == (4, str(bad), kind[0])
    assert "global position 4" in str(error)
    assert json.loads(str(error.payload)) == json.loads(kind[1])

    with pytest.raises(CorruptEventError) as caught:
        await backend.store.read_committed(None, 100)
    error = caught.value
    assert error.position == 4
    assert "global position 4" in str(error)
    assert error.page is not None
    assert error.cursor is not None
    assert [s.global_position for s in error.page.events] == [1, 2, 3]
    # The page's cursor stands before the row (reading on raises again), `cursor` after it.
    with pytest.raises(CorruptEventError):
        await backend.store.read_committed(error.page.cursor, 100)
    rest = await backend.store.read_committed(error.cursor, 100)
    assert [s.global_position for s in rest.events] == [5, 6, 7]


@KINDS
async def test_subscription_dead_letters_the_row_and_goes_on(
    backend: Backend, kind: tuple[str, str]
) -> None:
    bad, _good = await _good_bad_good(backend, kind)
    manager, collector, subscription = await _probe(backend)
    async with manager:
        # LIVE alone is not enough on PostgreSQL: while another session's transaction holds the
        # commit-safe horizon back, an empty page can make the reader live before the rows.
        await wait_until(
            lambda: subscription.state is SubscriptionState.LIVE
            and subscription.last_processed_position >= 7,
            30,
        )
        health = manager.get_subscription_health("probe")
        assert health is not None
        assert health.status == "degraded"
        assert (health.lag_events, health.state) == (0, "live")
        check = manager.check_health("probe")
        assert check is not None
        assert any(i.name == "corrupt_events" and i.status == "degraded"
                   for i in check.indicators)
        await _append(backend.store, range(8, 9))  # live after it, too
        await wait_until(lambda: collector.seen[-1:] == [8], 30)
    assert collector.seen == [1, 2, 3, 5, 6, 7, 8]
    [entry] = await backend.dlq.get_failed_events(projection_name="probe")
    assert (entry.event_id, entry.event_type) == (bad, kind[0])
    assert _event_data(entry) == json.loads(kind[1])  # the raw payload, as stored
    assert "global position 4" in entry.error_message
    assert "CorruptEventError" in (entry.error_stacktrace or "")
    assert (subscription.events_dlq, subscription.events_failed) == (1, 1)
    assert await backend.checkpoints.get_position("probe") == 8


async def test_a_payload_that_is_not_json_is_dead_lettered_as_text(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        backend = await _sqlite(str(tmp_path / "events.db"), stack)
        bad, _good = await _good_bad_good(backend, ("CorruptProbe", "{not json"))
        manager, collector, subscription = await _probe(backend)
        async with manager:
            await wait_until(lambda: subscription.state is SubscriptionState.LIVE, 30)
        assert collector.seen == [1, 2, 3, 5, 6, 7]
        [entry] = await backend.dlq.get_failed_events(projection_name="probe")
        assert entry.event_id == bad
        assert _event_data(entry) == {"raw_payload": "{not json"}


@KINDS
async def test_halt_stops_at_the_row_and_says_so(
    backend: Backend, kind: tuple[str, str]
) -> None:
    await _good_bad_good(backend, kind)
    manager, collector, subscription = await _probe(backend, on_corrupt_event="halt")
    async with manager:
        await wait_until(lambda: subscription.state is SubscriptionState.ERROR, 30)
        health = manager.get_subscription_health("probe")
        assert health is not None
        assert health.status == "unhealthy"
        assert health.lag_events == 4  # the row and the three after it
        assert not (await manager.readiness_check()).ready
    assert collector.seen == [1, 2, 3]
    assert isinstance(subscription.last_error, CorruptEventError)
    assert subscription.last_error.position == 4
    assert "global position 4" in str(health.last_error)
    assert await backend.dlq.get_failed_events(projection_name="probe") == []
    assert await backend.checkpoints.get_position("probe") == 3


async def test_without_a_dlq_the_default_policy_halts_naming_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncExitStack() as stack:
        backend = await _sqlite(str(tmp_path / "events.db"), stack)
        await _good_bad_good(backend, _UNKNOWN_TYPE)
        manager, collector, subscription = await _probe(backend, dlq=False)
        async with manager:
            await wait_until(lambda: subscription.state is SubscriptionState.ERROR, 30)
        assert collector.seen == [1, 2, 3]
        assert "Subscription probe stopped" in caplog.text
        assert "global position 4: there is no dead-letter queue" in caplog.text
        assert await backend.checkpoints.get_position("probe") == 3


async def test_a_projection_committing_its_checkpoint_reads_past_the_row(
    backend: Backend,
) -> None:
    """A DatabaseProjection gets the pages around the row whole, and its own checkpoint (in its
    transaction) moves past the row once it is dead-lettered: a restart applies nothing again."""
    register()
    async with backend.sessions() as session, session.begin():
        await session.execute(text(READ_MODEL))
    clock = uuid4()
    ticks = [SubsCrashTick(aggregate_id=clock, n=n) for n in range(6)]
    await backend.store.append_events(clock, "SubsCrashClock", ticks[:3], 0)
    bad = await backend.insert_raw("SubsCrashTick", json.dumps({"n": "three"}))
    await backend.store.append_events(clock, "SubsCrashClock", ticks[3:], 3)

    async def run_until_live() -> None:
        manager = _manager(backend)
        projection = AppliedRows(backend.sessions, backend.checkpoints)
        subscription = await manager.subscribe(
            projection, SubscriptionConfig(start_from="checkpoint", batch_size=2)
        )
        async with manager:
            await wait_until(
                lambda: subscription.state is SubscriptionState.LIVE
                and subscription.last_processed_position >= 7,
                30,
            )

    await run_until_live()
    await run_until_live()  # from its checkpoint: nothing applied twice, no second dead letter
    async with backend.sessions() as session:
        applied = dict((await session.execute(text("SELECT * FROM rm_sub_applied"))).all())
    assert applied == {str(tick.event_id): 1 for tick in ticks}
    [entry] = await backend.dlq.get_failed_events(projection_name="AppliedRows")
    assert entry.event_id == bad
    data = await backend.checkpoints.get_checkpoint_data(projection_name="AppliedRows")
    assert data is not None
    assert data.global_position == 7


def test_the_docs_example_runs(tmp_path: Path) -> None:
    docs = Path(__file__).parents[3] / "docs" / "subscriptions.md"
    found = re.search(r"```python\n(.*?)```", docs.read_text(), re.DOTALL)
    assert found is not None
    result = subprocess.run(
        [sys.executable, "-c", found.group(1)], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == ["2 [1]", "[3]", "15 degraded"]
