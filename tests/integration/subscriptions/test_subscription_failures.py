"""Issue 4, acceptance 3 (failures) with real databases: a DatabaseProjection under the
SubscriptionManager whose handler fails for good on some events. Its pages fall back to one
transaction per event; the failing events go to the dead-letter queue with the error and the
attempt count, every other event is applied exactly once, the checkpoint ends at the head, and
the dead letters can be listed, retried and resolved (`retry_dead_letters`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text
from subs_integration_helpers import fresh_schema, wait_until
from subscription_crash_child import READ_MODEL, SubsCrashTick, open_backend, register

from eventsource.events.base import DomainEvent
from eventsource.exceptions import ProjectionError
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.dlq import DLQRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import (
    ErrorInfo,
    SubscriptionConfig,
    SubscriptionConfigError,
    SubscriptionManager,
    SubscriptionState,
    retry_dead_letters,
)

_APPLY = text(
    "INSERT INTO rm_sub_applied (event_id, applications) VALUES (:id, 1) "
    "ON CONFLICT (event_id) DO UPDATE SET applications = rm_sub_applied.applications + 1"
)
TOTAL = 300
POISON = {37, 38, 211}


class Ledger(DatabaseProjection):
    """Fails for good on the events numbered in `poison` (retried 2 times, no backoff)."""

    MAX_RETRIES = 2
    RETRY_BACKOFF_BASE = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poison = set(POISON)

    @handles(SubsCrashTick)
    async def _on_tick(self, conn: Any, event: SubsCrashTick) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})
        if event.n in self.poison:
            raise ValueError(f"tick {event.n} is poison")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[EventStore, Any, Any, DLQRepository]]:
    register()
    async with AsyncExitStack() as stack:
        if request.param == "postgresql":
            from eventsource.repositories.postgresql import PostgreSQLDLQRepository

            url = request.getfixturevalue("pg_url")  # the schema fixture is async: ours here
            schema = await stack.enter_async_context(fresh_schema(url))
            location = f"{url} {schema}"
        else:
            location = str(tmp_path / "events.db")
        store, sessions, checkpoints = await stack.enter_async_context(
            open_backend(request.param, location)
        )
        if request.param == "postgresql":
            dlq: DLQRepository = PostgreSQLDLQRepository(sessions)
        else:
            from eventsource.repositories.sqlite import SQLiteDLQRepository

            dlq = SQLiteDLQRepository(store)  # type: ignore[arg-type]
        async with sessions() as session, session.begin():
            await session.execute(text(READ_MODEL))
        yield store, sessions, checkpoints, dlq


async def _append(store: EventStore, total: int) -> list[UUID]:
    clock = uuid4()
    events = [SubsCrashTick(aggregate_id=clock, n=n) for n in range(total)]
    for start in range(0, total, 64):
        await store.append_events(clock, "SubsCrashClock", events[start : start + 64], start)
    return [event.event_id for event in events]


async def _applications(sessions: Any) -> dict[str, int]:
    async with sessions() as session:
        rows = (await session.execute(text("SELECT * FROM rm_sub_applied"))).all()
    return dict(rows)


async def _run_until_live(manager: SubscriptionManager, projection: Ledger) -> None:
    config = SubscriptionConfig(batch_size=50, circuit_breaker_enabled=False)
    subscription = await manager.subscribe(projection, config)
    async with manager:
        await wait_until(lambda: subscription.state is SubscriptionState.LIVE, 30)
    assert subscription.state is SubscriptionState.STOPPED


async def test_failing_events_dead_lettered_the_rest_applied_once_and_retried(
    backend: tuple[EventStore, Any, Any, DLQRepository],
) -> None:
    store, sessions, checkpoints, dlq = backend
    ids = await _append(store, TOTAL)
    projection = Ledger(sessions, checkpoints, dlq)
    manager = SubscriptionManager(store, None, checkpoints, dlq_repo=dlq, enable_tracing=False)
    manager.poll_interval = 0.05
    errors: list[ErrorInfo] = []

    async def record(info: ErrorInfo) -> None:
        errors.append(info)

    manager.on_error(record)
    await _run_until_live(manager, projection)

    poisoned = {ids[n] for n in POISON}
    counts = await _applications(sessions)
    assert set(counts) == {str(i) for i in ids} - {str(i) for i in poisoned}
    assert set(counts.values()) == {1}
    entries = await dlq.get_failed_events(projection_name="Ledger")
    assert {entry.event_id for entry in entries} == poisoned
    # One dead letter per event, written by the projection: its error and its 2 attempts.
    assert all(entry.retry_count == 2 for entry in entries)
    assert all("is poison" in entry.error_message for entry in entries)
    assert sorted(str(info.event_id) for info in errors) == sorted(map(str, poisoned))
    assert all(info.error_type == "ProjectionError" for info in errors)
    subscription = manager.get_subscription("Ledger")
    assert subscription is not None
    assert (subscription.events_failed, subscription.events_dlq) == (3, 3)
    data = await checkpoints.get_checkpoint_data(projection_name="Ledger")
    assert data is not None
    assert data.global_position == TOTAL
    assert data.cursor is not None

    # Restarted from its checkpoint: nothing is applied again.
    again = SubscriptionManager(store, None, checkpoints, dlq_repo=dlq, enable_tracing=False)
    await _run_until_live(again, Ledger(sessions, checkpoints, dlq))
    assert await _applications(sessions) == counts

    # The projection raises ProjectionError from the cause when handled directly.
    with pytest.raises(ProjectionError) as raised:
        await projection.handle(await _event(store, ids[37]))
    assert isinstance(raised.value.__cause__, ValueError)

    # Retry the dead letters: one still fails, two are fixed and resolved.
    projection.poison = {211}
    result = await retry_dead_letters(dlq, projection, projection_name="Ledger")
    assert len(result.resolved) == 2
    assert len(result.failed) == 1
    assert not result.undecodable
    [still] = await dlq.get_failed_events(projection_name="Ledger")
    assert still.event_id == ids[211]
    resolved = await dlq.get_failed_events(projection_name="Ledger", status="resolved")
    assert {entry.event_id for entry in resolved} == {ids[37], ids[38]}
    assert all(entry.resolved_by == "retry_dead_letters" for entry in resolved)
    counts = await _applications(sessions)
    assert counts[str(ids[37])] == counts[str(ids[38])] == 1
    assert str(ids[211]) not in counts
    stats = await dlq.get_failure_stats()
    assert (stats.total_failed, stats.total_retrying) == (1, 0)


async def _event(store: EventStore, event_id: UUID) -> SubsCrashTick:
    async for stored in store.read_all():
        if stored.event_id == event_id:
            assert isinstance(stored.event, SubsCrashTick)
            return stored.event
    raise AssertionError(event_id)


async def test_plain_subscriber_dead_letters_carry_attempts_and_can_be_retried(
    backend: tuple[EventStore, Any, Any, DLQRepository],
) -> None:
    store, _sessions, checkpoints, dlq = backend
    ids = await _append(store, 40)
    handled: list[UUID] = []
    failing = {ids[5]}

    class Flaky:
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [SubsCrashTick]

        async def handle(self, event: DomainEvent) -> None:
            if event.event_id in failing:
                raise ConnectionError("downstream unavailable")
            handled.append(event.event_id)

    manager = SubscriptionManager(store, None, checkpoints, dlq_repo=dlq, enable_tracing=False)
    config = SubscriptionConfig(
        start_from="beginning", max_retries=2, initial_retry_delay=0.01, max_retry_delay=0.02,
        circuit_breaker_enabled=False,
    )
    subscription = await manager.subscribe(Flaky(), config, name="flaky")
    async with manager:
        await wait_until(lambda: subscription.state is SubscriptionState.LIVE, 30)
    assert handled == [i for i in ids if i != ids[5]]
    [entry] = await dlq.get_failed_events(projection_name="flaky")
    assert (entry.event_id, entry.retry_count) == (ids[5], 3)  # first try + 2 retries
    assert entry.error_message == "downstream unavailable"
    assert "ConnectionError" in (entry.error_stacktrace or "")

    failing.clear()
    result = await retry_dead_letters(dlq, Flaky(), projection_name="flaky")
    assert result.resolved == [entry.id]
    assert handled[-1] == ids[5]
    assert await dlq.get_failed_events(projection_name="flaky") == []


async def test_a_transactional_subscriber_keeps_its_projection_name(
    backend: tuple[EventStore, Any, Any, DLQRepository],
) -> None:
    store, sessions, checkpoints, _dlq = backend
    manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
    with pytest.raises(SubscriptionConfigError, match="projection_name"):
        await manager.subscribe(Ledger(sessions, checkpoints), name="ledger-v2")
    subscription = await manager.subscribe(Ledger(sessions, checkpoints))
    assert subscription.name == "Ledger"
    await asyncio.sleep(0)


async def test_one_dead_letter_degrades_health_for_the_rest_of_the_run(
    backend: tuple[EventStore, Any, Any, DLQRepository],
) -> None:
    store, _sessions, checkpoints, dlq = backend
    ids = await _append(store, 20)

    class Picky:
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [SubsCrashTick]

        async def handle(self, event: DomainEvent) -> None:
            if event.event_id == ids[3]:
                raise ValueError("tick 3 is malformed")

    manager = SubscriptionManager(store, None, checkpoints, dlq_repo=dlq, enable_tracing=False)
    # From its checkpoint (none yet: the beginning), so the second run does not read tick 3 again.
    config = SubscriptionConfig(start_from="checkpoint", max_retries=0,
                                circuit_breaker_enabled=False)
    subscription = await manager.subscribe(Picky(), config, name="picky")

    def indicator(name: str) -> tuple[str, float | None]:
        check = manager.check_health("picky")
        assert check is not None
        [found] = [i for i in check.indicators if i.name == name]
        return found.status, found.value

    async with manager:
        await wait_until(lambda: subscription.state is SubscriptionState.LIVE
                         and subscription.last_processed_position >= 20, 30)
        # One dead letter, far below max_dlq_events_warning (10): still degraded, and the
        # manager's status with it, while every other indicator is healthy.
        health = manager.get_subscription_health("picky")
        assert health is not None
        assert (health.status, health.state, health.lag_events) == ("degraded", "live", 0)
        assert indicator("dead_letters") == ("degraded", 1.0)
        assert indicator("dlq_events") == ("healthy", 1.0)
        assert manager.get_health()["status"] == "degraded"
    [entry] = await dlq.get_failed_events(projection_name="picky")
    assert entry.event_id == ids[3]

    # A new run starts clean: the dead letter is counted in events_dlq, not in its health.
    async with manager:
        await wait_until(lambda: subscription.state is SubscriptionState.LIVE, 30)
        health = manager.get_subscription_health("picky")
        assert health is not None
        assert health.status == "healthy"
        assert indicator("dead_letters") == ("healthy", 0.0)
        assert (subscription.events_dlq, subscription.dead_letters_since_start) == (1, 0)
