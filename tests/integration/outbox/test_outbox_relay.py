"""`OutboxRelay` over every backend: order per aggregate, failing buses, poison rows, cleanup,
and one relay at a time (issue 5, acceptance 2)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from outbox_support import (
    Deposited,
    Outboxed,
    RecordingBus,
    backend_env,
    deposits,
    pg_url_for,
    register,
    statuses,
    versions_by_aggregate,
)

from eventsource import OutboxRelay
from eventsource.repositories import RelayPassResult
from eventsource.repositories.outbox import InMemoryOutboxRepository, OutboxEntry, OutboxStats
from eventsource.subscriptions.retry import RetryConfig
from eventsource.testing.contract.bus import eventually

BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
NO_WAIT = RetryConfig(max_retries=2, initial_delay=1e-9, max_delay=1e-9, jitter=0)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    return request.param, pg_url_for(request.param, request)


@pytest.fixture
async def env(backend: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Outboxed]:
    async with backend_env(backend[0], tmp_path, backend[1]) as opened:
        yield opened


async def interleaved(env: Outboxed, accounts: list[UUID], per_account: int, chunk: int) -> None:
    """Append `per_account` events to each account, `chunk` at a time, accounts taking turns."""
    for start in range(1, per_account + 1, chunk):
        for account in accounts:
            count = min(chunk, per_account - start + 1)
            await env.store.append_events(
                account, "OutboxAccount", deposits(account, start, count), start - 1
            )


async def drain(relay: OutboxRelay, passes: int = 100) -> list[RelayPassResult]:
    """Run passes until one publishes nothing."""
    results = []
    for _ in range(passes):
        result = await relay.run_once()
        results.append(result)
        if not result.published and not result.failed_attempts:
            return results
    raise AssertionError(f"the relay was still publishing after {passes} passes")


async def test_publishes_every_event_once_in_order_per_aggregate(env: Outboxed) -> None:
    accounts = [uuid4() for _ in range(5)]
    await interleaved(env, accounts, per_account=24, chunk=3)
    bus = RecordingBus()
    seen: list[Deposited] = []
    bus.subscribe(Deposited, seen.append)
    relay = env.relay(bus, batch_size=25, leader_lock=True)
    results = await drain(relay)
    assert [r.published for r in results] == [25, 25, 25, 25, 20, 0]
    assert bus.calls == 5, "one publish call per batch"
    assert versions_by_aggregate(seen) == {a: list(range(1, 25)) for a in accounts}
    assert await statuses(env.outbox) == (0, 120, 0)
    assert relay.stats.events_published == 120
    assert relay.is_leader
    stats = await relay.get_stats()
    assert isinstance(stats, OutboxStats)
    assert stats.published_count == 120


async def test_a_failing_aggregate_is_held_back_while_others_proceed(env: Outboxed) -> None:
    stuck, *others = [uuid4() for _ in range(4)]
    await interleaved(env, [stuck, *others], per_account=6, chunk=2)
    bus = RecordingBus()
    bus.failing.add(stuck)
    relay = env.relay(bus, batch_size=10, retry=NO_WAIT)
    results = await drain(relay)
    published = versions_by_aggregate(bus.published)
    assert stuck not in published, "no event of the failing aggregate went out"
    assert published == {a: list(range(1, 7)) for a in others}
    # Its first row was tried 1 + max_retries times, then marked failed; the rest wait.
    assert sum(r.marked_failed for r in results) == 1
    [failed] = await env.outbox.get_failed_events()
    assert (failed.aggregate_id, failed.event_data["payload"]["n"]) == (stuck, 1)
    assert failed.retry_count == 3
    assert failed.last_error is not None
    assert "broker rejected" in failed.last_error
    assert await statuses(env.outbox) == (5, 18, 1)
    waiting = await env.outbox.get_pending_events()
    assert all(row.retry_count == 0 for row in waiting), "later rows were never attempted"
    # Held while failed, even with the bus healthy again ...
    bus.failing.clear()
    assert (await relay.run_once()).published == 0
    # ... until an operator requeues the failed row: then in order.
    assert await relay.requeue_failed() == 1
    await drain(relay)
    assert versions_by_aggregate(bus.published)[stuck] == list(range(1, 7))
    assert await statuses(env.outbox) == (0, 24, 0)


async def test_a_failure_mid_aggregate_holds_only_what_follows_it(env: Outboxed) -> None:
    """Rows of the failing aggregate before the bad one still go out, in order."""
    account, other = uuid4(), uuid4()
    await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 5), 0)
    await env.store.append_events(other, "OutboxAccount", deposits(other, 1, 2), 0)
    stored = (await env.store.get_events(account, "OutboxAccount")).events
    bus = _RefusingBus({stored[2].event_id})  # only the third event of `account` is refused
    relay = env.relay(bus, retry=NO_WAIT, batch_size=100)
    await relay.run_once()
    assert versions_by_aggregate(bus.published) == {account: [1, 2], other: [1, 2]}
    pending = await env.outbox.get_pending_events()
    assert [(row.event_data["payload"]["n"], row.retry_count) for row in pending] == [
        (3, 1),
        (4, 0),
        (5, 0),
    ]


async def test_rows_refused_at_the_head_hold_back_only_their_own_aggregates(env: Outboxed) -> None:
    """A refusal is not an outage: however many refused rows come first in a batch, the pass
    still publishes the other aggregates' rows."""
    refused, healthy = [uuid4() for _ in range(4)], [uuid4() for _ in range(2)]
    for account in [*refused, *healthy]:  # the refused ones first: the head of the batch
        await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 2), 0)
    ids = {
        stored.event_id
        for account in refused
        for stored in (await env.store.get_events(account, "OutboxAccount")).events
    }
    bus = _RefusingBus(ids)
    relay = env.relay(bus, retry=NO_WAIT, batch_size=100)
    result = await relay.run_once()
    assert versions_by_aggregate(bus.published) == {a: [1, 2] for a in healthy}
    assert result.published == 4


class _RefusingBus(RecordingBus):
    """Refuses calls that contain one of the given event ids."""

    def __init__(self, refused: set[UUID]) -> None:
        super().__init__()
        self.refused = refused

    async def publish(self, events: Any, background: bool = False) -> None:
        if any(e.event_id in self.refused for e in events):
            self.calls += 1
            raise ValueError("refused")
        await super().publish(events, background)


async def test_a_bus_outage_never_marks_rows_failed(env: Outboxed) -> None:
    accounts = [uuid4() for _ in range(3)]
    await interleaved(env, accounts, per_account=4, chunk=4)
    bus = RecordingBus()
    bus.down = True
    relay = env.relay(bus, retry=NO_WAIT)
    for _ in range(6):  # far more failures than max_retries allows
        result = await relay.run_once()
        assert result.bus_down
        assert result.published == result.marked_failed == 0
    assert bus.calls <= 6 * 3, "a pass gives up after a few attempts when nothing goes out"
    assert await statuses(env.outbox) == (12, 0, 0)
    assert max(row.retry_count for row in await env.outbox.get_pending_events()) >= 3
    bus.down = False
    await drain(relay)
    assert versions_by_aggregate(bus.published) == {a: [1, 2, 3, 4] for a in accounts}


async def test_a_row_in_backoff_holds_its_aggregate(env: Outboxed) -> None:
    account, other = uuid4(), uuid4()
    await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 2), 0)
    bus = RecordingBus()
    bus.failing.add(account)
    slow = RetryConfig(max_retries=5, initial_delay=60.0, max_delay=60.0, jitter=0)
    relay = env.relay(bus, retry=slow)
    await relay.run_once()  # fails: the first row waits a minute
    bus.failing.clear()
    await env.store.append_events(other, "OutboxAccount", deposits(other, 1, 1), 0)
    result = await relay.run_once()
    assert (result.published, result.held) == (1, 2)
    assert versions_by_aggregate(bus.published) == {other: [1]}


async def test_an_event_that_cannot_be_rebuilt_becomes_failed(env: Outboxed) -> None:
    account, other = uuid4(), uuid4()
    await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 2), 0)
    await env.store.append_events(other, "OutboxAccount", deposits(other, 1, 1), 0)
    from eventsource.events.registry import EventRegistry, default_registry

    bus = RecordingBus()
    relay = env.relay(bus, EventRegistry(), retry=NO_WAIT)
    default_registry.unregister("OutboxDeposited")  # unknown to both registries now
    for _ in range(3):
        await relay.run_once()
    assert await statuses(env.outbox) == (1, 0, 2)
    [first, *_] = await env.outbox.get_failed_events()
    assert "cannot rebuild" in (first.last_error or "")
    register()
    assert await relay.requeue_failed() == 2
    await drain(relay)
    assert versions_by_aggregate(bus.published) == {account: [1, 2], other: [1]}


async def test_cleanup_removes_only_old_published_rows(env: Outboxed) -> None:
    accounts = [uuid4() for _ in range(3)]
    await interleaved(env, accounts, per_account=2, chunk=2)
    bus = RecordingBus()
    bus.failing.add(accounts[2])
    relay = env.relay(bus, retry=RetryConfig(max_retries=0), batch_size=2)
    # The refused aggregate's batch holds only its rows: refused (not unreachable), it still
    # counts toward `failed`.
    await drain(relay)
    assert await statuses(env.outbox) == (1, 4, 1)
    published = [e.event_id for e in bus.published]
    await _age_published(env, published[:3], days=10)  # the fourth was published just now
    assert await relay.cleanup_published(days=30) == 0
    assert await relay.cleanup_published(days=7) == 3
    assert await statuses(env.outbox) == (1, 1, 1)
    assert await relay.cleanup_published(days=7) == 0


async def test_run_forever_cleans_up_periodically(env: Outboxed) -> None:
    account = uuid4()
    await env.store.append_events(account, "OutboxAccount", deposits(account, 1, 3), 0)
    bus = RecordingBus()
    await drain(env.relay(bus, leader_lock=False))
    await _age_published(env, [e.event_id for e in bus.published[:2]], days=3)
    relay = env.relay(bus, poll_interval=0.01, cleanup_after_days=2)
    async with relay:
        await _eventually_async(lambda: _published_count(env), 1)
    assert relay.stats.passes > 0
    assert not relay.is_running


async def _published_count(env: Outboxed) -> int:
    return int((await env.outbox.get_stats()).published_count)


async def _eventually_async(probe: Any, expected: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value}, not {expected}"
        await asyncio.sleep(0.01)


async def _age_published(env: Outboxed, event_ids: list[UUID], days: int) -> None:
    """Pretend these events' rows were published `days` days ago."""
    when = datetime.now(UTC) - timedelta(days=days)
    if env.backend == "memory":
        outbox: InMemoryOutboxRepository = env.outbox
        from dataclasses import replace

        rows: dict[UUID, OutboxEntry] = outbox._rows
        for key, row in rows.items():
            if row.event_id in event_ids:
                rows[key] = replace(row, published_at=when)
        return
    if env.backend == "sqlite":
        with sqlite3.connect(env.location) as db:
            for event_id in event_ids:
                db.execute(
                    "UPDATE event_outbox SET published_at = ? WHERE event_id = ?",
                    (when.isoformat(timespec="microseconds"), str(event_id)),
                )
        return
    import asyncpg

    url, schema = env.location.split()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.execute(
            "UPDATE event_outbox SET published_at = $1 WHERE event_id = ANY($2::uuid[])",
            when,
            event_ids,
        )
    finally:
        await conn.close()


async def test_only_one_of_several_relays_publishes(env: Outboxed) -> None:
    accounts = [uuid4() for _ in range(4)]
    bus = RecordingBus()
    relays = [
        env.relay(bus, outbox=await env.new_outbox(), batch_size=7, poll_interval=0.01)
        for _ in range(3)
    ]
    for relay in relays:
        await relay.start()
    try:
        await interleaved(env, accounts, per_account=30, chunk=5)
        await eventually(lambda: len(bus.published) >= 120, "every event", timeout=30)
        await eventually(
            lambda: all(r.stats.passes + r.stats.standby_passes > 3 for r in relays),
            "every relay polled",
        )
        leaders = [r for r in relays if r.is_leader]
        assert len(leaders) == 1
        assert all(r.stats.events_published == 0 for r in relays if r is not leaders[0])
        assert len(bus.published) == 120, "no event published twice"
        # The leader stops: another one takes over.
        await leaders[0].stop()
        more = uuid4()
        await env.store.append_events(more, "OutboxAccount", deposits(more, 1, 3), 0)
        await eventually(lambda: len(bus.published) == 123, "the events after the handover")
    finally:
        for relay in relays:
            await relay.stop()
    assert sum(1 for r in relays if r.stats.events_published) == 2
    assert versions_by_aggregate(bus.published) == {
        **{a: list(range(1, 31)) for a in accounts},
        more: [1, 2, 3],
    }


async def test_a_plain_outbox_repository_works_too() -> None:
    """A repository with only the API.md methods: marked row by row, poison held in memory."""
    register()
    inner = InMemoryOutboxRepository()
    plain = _PlainRepository(inner)
    stuck, free = uuid4(), uuid4()
    for event in [*deposits(stuck, 1, 2), *deposits(free, 1, 2)]:
        await plain.add_event(event)
    bus = RecordingBus()
    bus.failing.add(stuck)
    relay = OutboxRelay(plain, bus, retry=NO_WAIT)
    await drain(relay)
    assert versions_by_aggregate(bus.published) == {free: [1, 2]}
    assert await statuses(inner) == (1, 2, 1)
    with pytest.raises(TypeError, match="requeue_failed"):
        await relay.requeue_failed()


class _PlainRepository:
    def __init__(self, inner: InMemoryOutboxRepository) -> None:
        self.add_event = inner.add_event
        self.get_pending_events = inner.get_pending_events
        self.mark_published = inner.mark_published
        self.mark_failed = inner.mark_failed
        self.increment_retry = inner.increment_retry
        self.cleanup_published = inner.cleanup_published
        self.get_stats = inner.get_stats


async def test_one_update_per_batch_on_sqlite(tmp_path: Path) -> None:
    async with backend_env("sqlite", tmp_path, None) as env:
        accounts = [uuid4() for _ in range(3)]
        await interleaved(env, accounts, per_account=20, chunk=20)
        statements: list[str] = []
        link = await env.outbox._executor._ready()
        await link.run(lambda db: db.set_trace_callback(statements.append))
        try:
            await drain(env.relay(RecordingBus(), batch_size=50, leader_lock=False))
        finally:
            await link.run(lambda db: db.set_trace_callback(None))
        updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
        assert len(updates) == 2, updates  # batches of 50 and 10
        assert all("IN (" in s for s in updates)


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 0), ("poll_interval", 0), ("cleanup_after_days", -1), ("cleanup_interval", 0)],
)
def test_bad_settings_are_refused_by_name(option: str, value: float) -> None:
    settings: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=option):
        OutboxRelay(InMemoryOutboxRepository(), RecordingBus(), **settings)
