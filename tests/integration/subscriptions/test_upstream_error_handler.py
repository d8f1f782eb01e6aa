"""Issue 20, group 15: `SubscriptionErrorHandler.handle_error` dead-letters per its strategy into
the real DLQ repositories (an SQLite file and PostgreSQL), for events read back from the store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from subscription_crash_child import SubsCrashTick
from upstream_backends import BACKENDS, upstream_backend

from eventsource.repositories.dlq import DLQRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import (
    ErrorHandlingConfig,
    ErrorHandlingStrategy,
    SubscriptionErrorHandler,
)

Backend = tuple[EventStore, DLQRepository]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    from eventsource.repositories.postgresql import PostgreSQLDLQRepository
    from eventsource.repositories.sqlite import SQLiteDLQRepository
    from eventsource.stores.sqlite import SQLiteEventStore

    async with upstream_backend(request, tmp_path) as (kind, store, sessions, _):
        if kind == "postgresql":
            yield store, PostgreSQLDLQRepository(sessions)
        else:
            assert isinstance(store, SQLiteEventStore)
            yield store, SQLiteDLQRepository(store)


@pytest.mark.parametrize(
    ("strategy", "error", "retry_count", "dead_lettered"),
    [
        (ErrorHandlingStrategy.DLQ_ONLY, ConnectionError("down"), 0, True),
        (ErrorHandlingStrategy.RETRY_THEN_DLQ, ConnectionError("down"), 0, False),
        (ErrorHandlingStrategy.RETRY_THEN_DLQ, ConnectionError("down"), 3, True),
        (ErrorHandlingStrategy.RETRY_THEN_CONTINUE, ValueError("bad"), 0, True),
        (ErrorHandlingStrategy.RETRY_THEN_CONTINUE, ConnectionError("down"), 3, False),
        (ErrorHandlingStrategy.CONTINUE, ValueError("bad"), 0, False),
    ],
)
async def test_handle_error_dead_letters_per_strategy(
    backend: Backend,
    strategy: ErrorHandlingStrategy,
    error: Exception,
    retry_count: int,
    dead_lettered: bool,
) -> None:
    store, dlq = backend
    clock = uuid4()
    await store.append_events(clock, "SubsCrashClock", [SubsCrashTick(aggregate_id=clock, n=4)], 0)
    [stored] = (await store.read_all()._collect()).events
    handler = SubscriptionErrorHandler("ticks", ErrorHandlingConfig(strategy=strategy), dlq)
    info = await handler.handle_error(error, stored, retry_count=retry_count)
    assert (info.event_id, info.position) == (stored.event_id, stored.global_position)
    assert info.sent_to_dlq is dead_lettered
    assert handler.dlq_count == int(dead_lettered)
    entries = await dlq.get_failed_events()
    if not dead_lettered:
        assert entries == []
        return
    [entry] = entries
    assert (entry.event_id, entry.projection_name, entry.event_type) == (
        stored.event_id, "ticks", "SubsCrashTick",
    )
    data = entry.event_data
    assert (json.loads(data) if isinstance(data, str) else data)["n"] == 4
    assert entry.retry_count == retry_count
    assert str(error) in entry.error_message
