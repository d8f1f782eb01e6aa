"""Leader election through a lease row with an epoch (issue 17, acceptance 4)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from eventsource.bus.memory import InMemoryEventBus
from eventsource.repositories.outbox import InMemoryOutboxRepository
from eventsource.repositories.outbox_relay import OutboxRelay
from eventsource.scaling import LeaderLease, LeaseLost, ScalingConfigurationError


def _engine(url: str, schema: str, application: str) -> AsyncEngine:
    return create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema, "application_name": application}},
    )


async def _act(lease: LeaderLease, stop: asyncio.Event) -> None:
    """What a singleton does while it leads: one row per action, fenced by the epoch."""
    while not stop.is_set():
        if lease.is_leader:
            with contextlib.suppress(LeaseLost, DBAPIError):
                async with lease.transaction() as (conn, epoch):
                    await conn.execute(text(
                        "INSERT INTO leader_actions (epoch, owner) VALUES (:e, :o)"
                    ), {"e": epoch, "o": lease.owner})
        await asyncio.sleep(0.02)


@pytest.mark.postgresql
async def test_a_terminated_leader_stops_and_each_epoch_has_one_actor(
    pg_url: str, pg_schema: str
) -> None:
    engines = {name: _engine(pg_url, pg_schema, f"leader-{name}") for name in "ab"}
    async with engines["a"].begin() as conn:
        await conn.execute(text("CREATE TABLE leader_actions (epoch BIGINT, owner TEXT)"))
    leases = {n: LeaderLease(e, "relay", ttl=1.0, heartbeat=0.2, owner=n)
              for n, e in engines.items()}
    stop = asyncio.Event()
    try:
        async with leases["a"].keep(), leases["b"].keep():
            actors = [asyncio.ensure_future(_act(leases[n], stop)) for n in "ab"]
            async with asyncio.timeout(10):
                while not any(lease.is_leader for lease in leases.values()):  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.02)
            leader = next(n for n, lease in leases.items() if lease.is_leader)
            first_epoch = leases[leader].epoch
            await asyncio.sleep(0.5)
            async with engines["b" if leader == "a" else "a"].connect() as conn:
                await conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :a"), {"a": f"leader-{leader}"})
            async with asyncio.timeout(10):  # its session's next use fails: it stops acting
                while leases[leader].losses == 0:  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.01)
            async with asyncio.timeout(10):  # and someone leads again, under a new epoch
                while not any(lease.is_leader for lease in leases.values()):  # noqa: ASYNC110 - polls another process's state
                    await asyncio.sleep(0.02)
            assert max(lease.epoch or 0 for lease in leases.values()) > (first_epoch or 0)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*actors)
        async with engines["a"].connect() as conn:
            per_epoch = (await conn.execute(text(
                "SELECT epoch, COUNT(DISTINCT owner), COUNT(*) FROM leader_actions GROUP BY epoch"
            ))).all()
        assert len(per_epoch) >= 2
        assert all(owners == 1 for _, owners, _ in per_epoch)
    finally:
        for engine in engines.values():
            await engine.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'lead.db'}")
    yield engine
    await engine.dispose()


async def test_outbox_relays_elect_one_leader_through_the_lease(sqlite_engine: AsyncEngine) -> None:
    outbox, bus = InMemoryOutboxRepository(), InMemoryEventBus()
    relays = [OutboxRelay(outbox, bus, lock=LeaderLease(sqlite_engine, "outbox", ttl=5,
                                                        heartbeat=1, owner=n)) for n in "ab"]
    first, second = [await relay.run_once() for relay in relays]
    assert (first.leader, second.leader) == (True, False)
    await relays[0].stop()
    assert (await relays[1].run_once()).leader


async def test_a_fence_without_leadership_raises_lease_lost(sqlite_engine: AsyncEngine) -> None:
    lease = LeaderLease(sqlite_engine, "job", ttl=5, heartbeat=1)
    other = LeaderLease(sqlite_engine, "job", ttl=5, heartbeat=1)
    assert await lease.acquire()
    assert not await other.acquire()
    async with sqlite_engine.begin() as conn:
        assert await lease.fence(conn) == lease.epoch
    with pytest.raises(LeaseLost, match="leadership lost"):
        async with sqlite_engine.begin() as conn:
            await other.fence(conn)
    await lease.release()
    assert await other.acquire()
    assert other.epoch == 2


def test_a_leader_lease_no_longer_than_its_heartbeat_is_refused(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ScalingConfigurationError):
        LeaderLease(engine, "job", ttl=1, heartbeat=1)
