"""A relay process killed with SIGKILL in the middle of publishing a batch, then restarted, on
an SQLite file and on PostgreSQL, publishing to a real Redis stream (issue 5, acceptance 2):
every stored event is published at least once, in order per aggregate, none lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast
from uuid import UUID, uuid4

import pytest
from outbox_brokers import Broker
from outbox_support import Outboxed, backend_env, deposits, first_occurrences, pg_url_for

from brokers import RedisEntries, require_redis

HERE = Path(__file__).parent
SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
ACCOUNTS, PER_ACCOUNT = 6, 25
HANG_AFTER = 45  # the 5th event of the 5th batch of 10


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    return request.param, pg_url_for(request.param, request)


@pytest.fixture
async def env(sql_backend: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Outboxed]:
    async with backend_env(sql_backend[0], tmp_path, sql_backend[1]) as opened:
        yield opened


@pytest.fixture
async def stream() -> AsyncIterator[Broker]:
    broker = Broker("redis", require_redis(), f"outbox-{uuid.uuid4().hex[:12]}")
    try:
        yield broker
    finally:
        await broker.cleanup()


def _spawn(env: Outboxed, broker: Broker, marker: Path, hang_after: int) -> subprocess.Popen[bytes]:
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "relay_child.py"),
            env.backend,
            env.location,
            broker.url,
            broker.name,
            str(marker),
            str(hang_after),
        ],
        env=child_env,
    )


async def _wait_for(
    check: Callable[[], Awaitable[bool]], child: subprocess.Popen[bytes], what: str
) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while not await check():
        assert child.poll() is None, f"the relay process died before {what}"
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _published(broker: Broker) -> list[tuple[UUID, UUID, int]]:
    """(event id, aggregate id, n) of every entry of the stream, in stream order."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(broker.url)
    try:
        entries = cast(RedisEntries, await client.xrange(f"{broker.name}:stream"))
    finally:
        await client.aclose()
    return [
        (
            UUID(fields[b"event_id"].decode()),
            UUID(fields[b"aggregate_id"].decode()),
            json.loads(fields[b"payload"])["n"],
        )
        for _, fields in entries
    ]


@pytest.mark.slow
async def test_a_killed_relay_loses_nothing_and_keeps_order(
    env: Outboxed, stream: Broker, tmp_path: Path
) -> None:
    accounts = [uuid4() for _ in range(ACCOUNTS)]
    stored: set[UUID] = set()
    for start in range(1, PER_ACCOUNT + 1, 5):  # accounts take turns, 5 events at a time
        for account in accounts:
            events = deposits(account, start, 5)
            await env.store.append_events(account, "OutboxAccount", events, start - 1)
            stored |= {e.event_id for e in events}
    total = len(stored)
    marker = tmp_path / "hung"

    async def hung() -> bool:
        return marker.exists()

    first = _spawn(env, stream, marker, HANG_AFTER)
    try:
        await _wait_for(hung, first, "the hang")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = await _published(stream)
    assert len(before) == HANG_AFTER, "killed mid-batch: half of the 5th batch went out"
    stats = await env.outbox.get_stats()
    assert (stats.published_count, stats.pending_count) == (40, total - 40)

    second = _spawn(env, stream, tmp_path / "never", 0)
    try:

        async def drained() -> bool:
            return int((await env.outbox.get_stats()).pending_count) == 0

        await _wait_for(drained, second, "the restarted relay to drain the outbox")
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()

    after = await _published(stream)
    assert {event_id for event_id, _, _ in after} == stored, "every event, none lost"
    # The killed batch's first half went out twice (at least once), nothing else did.
    assert len(after) == total + HANG_AFTER - 40
    by_account: dict[UUID, list[int]] = {}
    for _, account, n in after:
        by_account.setdefault(account, []).append(n)
    assert {a: first_occurrences(ns) for a, ns in by_account.items()} == {
        a: list(range(1, PER_ACCOUNT + 1)) for a in accounts
    }
    assert (await env.outbox.get_stats()).published_count == total
