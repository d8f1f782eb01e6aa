"""Live wake-ups on PostgreSQL: commits of other processes wake `wait_for_new_events` at once.

The waits below use 30 s timeouts: `wait_for_new_events` returns False when its timeout runs
out, so a True return within the test's guard proves a commit woke it, not the clock.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from _pg_support import added, open_store_in, store

from eventsource import InMemoryCheckpointRepository
from eventsource.events.base import DomainEvent
from eventsource.stores.postgresql import PostgreSQLEventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager, SubscriptionState

pytestmark = pytest.mark.postgresql
__all__ = ["store"]

_GUARD = 20.0  # fails the test long before a 30 s poll could have delivered anything

_WRITER = textwrap.dedent(
    """
    import asyncio, sys, uuid
    sys.path.insert(0, {support!r})
    from _pg_support import added, open_store_in

    async def main():
        store, engine = open_store_in({url!r}, {schema!r})
        await store.initialize()
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        # Read commands off the loop: the store's NOTIFY is sent in the background.
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            stream = uuid.uuid4()
            await store.append_events(stream, "PgCart", [added(stream, 7)], 0)
            print(stream, flush=True)
        await store.close()
        await engine.dispose()

    asyncio.run(main())
    """
)


class _Writer:
    """A separate Python process that appends one event per `append()`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def append(self) -> UUID:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()
        return UUID((await self.proc.stdout.readline()).decode().strip())


@pytest.fixture
async def writer(pg_url: str, pg_schema: str) -> AsyncIterator[_Writer]:
    code = _WRITER.format(support=str(Path(__file__).parent), url=pg_url, schema=pg_schema)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    async with asyncio.timeout(60):
        assert (await proc.stdout.readline()).strip() == b"ready"
    try:
        yield _Writer(proc)
    finally:
        proc.stdin.close()
        async with asyncio.timeout(30):
            assert await proc.wait() == 0


async def _drain(store: PostgreSQLEventStore) -> None:
    """Open LISTEN and consume every wake-up already pending."""
    while await store.wait_for_new_events(0.2):
        pass


async def test_another_process_commit_wakes_a_blocked_wait(
    store: PostgreSQLEventStore, writer: _Writer
) -> None:
    await _drain(store)
    waiting = asyncio.create_task(store.wait_for_new_events(30))
    await asyncio.sleep(0.05)  # the wait is blocked
    assert not waiting.done()
    stream = await writer.append()
    async with asyncio.timeout(_GUARD):
        assert await waiting is True
    page = await store.read_committed(None)
    assert [s.aggregate_id for s in page.events] == [stream]


async def test_listen_reconnects_after_its_connection_is_killed(
    store: PostgreSQLEventStore, writer: _Writer, pg_url: str
) -> None:
    await _drain(store)
    signals = store._signals
    assert signals is not None
    assert signals._listener is not None
    pid = signals._listener.get_server_pid()  # type: ignore[attr-defined]
    admin = await _admin(pg_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    async with asyncio.timeout(_GUARD):
        # The drop itself wakes waiters (a notification may have been lost) ...
        assert await store.wait_for_new_events(30) is True
        await _drain(store)  # ... and the next wait listens on a new connection
    assert signals._listener is not None
    assert signals._listener.get_server_pid() != pid  # type: ignore[attr-defined]
    waiting = asyncio.create_task(store.wait_for_new_events(30))
    await writer.append()
    async with asyncio.timeout(_GUARD):
        assert await waiting is True


async def test_waits_fall_back_to_polling_without_listen(
    store: PostgreSQLEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_args: Any) -> Any:
        raise OSError("LISTEN is not available here")  # as behind a transaction-mode proxy

    assert store._pool is not None
    monkeypatch.setattr(store._pool, "open_dedicated", refuse)
    await _drain(store)
    assert await store.wait_for_new_events(0.05) is False  # a plain timeout: polling
    stream = uuid4()
    await store.append_events(stream, "PgCart", [added(stream, 1)], 0)
    assert await store.wait_for_new_events(30) is True  # appends through this object still wake


async def test_live_subscription_gets_another_process_event_before_the_poll_interval(
    store: PostgreSQLEventStore, writer: _Writer
) -> None:
    seen: list[UUID] = []

    class Recorder:
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return []

        async def handle(self, event: DomainEvent) -> None:
            seen.append(event.aggregate_id)

    manager = SubscriptionManager(
        store, None, InMemoryCheckpointRepository(enable_tracing=False), enable_tracing=False
    )
    manager.poll_interval = 30.0
    subscription = await manager.subscribe(Recorder(), SubscriptionConfig(), name="live")
    async with manager:
        async with asyncio.timeout(_GUARD):
            while subscription.state is not SubscriptionState.LIVE:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the reader is now blocked waiting, 30 s from its next poll
        stream = await writer.append()
        async with asyncio.timeout(_GUARD):
            while stream not in seen:  # noqa: ASYNC110 - plain state written by the handler
                await asyncio.sleep(0.01)
    assert seen == [stream]


async def test_held_back_commit_is_delivered_when_a_silent_transaction_ends(
    store: PostgreSQLEventStore, pg_url: str, pg_schema: str
) -> None:
    """An open transaction that never notifies holds the horizon: readers are re-woken."""
    await _drain(store)
    other, engine = open_store_in(pg_url, pg_schema)
    blocker = await _admin(pg_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.fetchval("SELECT pg_current_xact_id()")  # holds the horizon back
        stream = uuid4()
        await other.append_events(stream, "PgCart", [added(stream, 1)], 0)
        async with asyncio.timeout(_GUARD):
            assert await store.wait_for_new_events(30) is True  # NOTIFY from the other store
            page = await store.read_committed(None)
            assert page.events == []  # committed, but behind the horizon
            await transaction.commit()  # no NOTIFY: the re-check timer wakes the wait
            while not page.events:  # other sessions of the cluster may hold the horizon too
                assert await store.wait_for_new_events(30) is True
                page = await store.read_committed(None)
        assert [s.aggregate_id for s in page.events] == [stream]
    finally:
        await blocker.close()
        await other.close()
        await engine.dispose()


async def test_head_and_position_cursors(store: PostgreSQLEventStore) -> None:
    streams = [uuid4() for _ in range(3)]
    positions = [
        (await store.append_events(s, "PgCart", [added(s, 1)], 0)).global_position
        for s in streams
    ]
    head = await store.head_cursor()
    assert (await store.read_committed(head)).events == []
    later = uuid4()
    await store.append_events(later, "PgCart", [added(later, 2)], 0)
    assert [s.aggregate_id for s in (await store.read_committed(head)).events] == [later]
    after_first = await store.cursor_for_position(positions[0])
    page = await store.read_committed(after_first)
    assert [s.aggregate_id for s in page.events] == [*streams[1:], later]
    assert await store.cursor_for_position(0) == "0:0"
    with pytest.raises(ValueError, match="position"):
        await store.cursor_for_position(-1)


async def _admin(pg_url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(pg_url)
