"""A property test: what a stream read shows under any rule and state equals a simple model,
before and after the purge, and the next append continues the stream's versions (real SQLite
file, one store for all examples, a fresh stream per example)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from _retention_support import Noted, append, read
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventsource.exceptions import StreamTombstonedError
from eventsource.retention import PurgeJob, RetentionRule, StreamRetention, reading
from eventsource.stores.sqlite import SQLiteEventStore

STATES = ("live", "soft_deleted", "archived", "tombstoned")


def model(head: int, max_count: int | None, truncate: int, state: str,
          include_archived: bool) -> list[int] | None:
    """The versions a read shows; None: the read raises StreamTombstonedError."""
    if state == "tombstoned":
        return None
    if state == "archived" and not include_archived:
        return []
    if state == "soft_deleted":
        truncate = head + 1
    cut = max(truncate, head - max_count + 1 if max_count is not None else 0)
    return list(range(max(cut, 1), head + 1))


@pytest.fixture(scope="module")
def loop_and_store() -> Iterator[tuple[asyncio.AbstractEventLoop, SQLiteEventStore]]:
    loop = asyncio.new_event_loop()
    directory = tempfile.mkdtemp()
    store = SQLiteEventStore(str(Path(directory) / "model.db"))
    loop.run_until_complete(store.initialize())
    store.event_registry.register(Noted)
    yield loop, store
    loop.run_until_complete(store.close())
    loop.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    head=st.integers(1, 8),
    max_count=st.none() | st.integers(1, 9),
    truncate=st.integers(0, 9),
    state=st.sampled_from(STATES),
    include_archived=st.booleans(),
)
def test_reads_match_the_model_before_and_after_the_purge(
    loop_and_store: tuple[asyncio.AbstractEventLoop, SQLiteEventStore],
    head: int, max_count: int | None, truncate: int, state: str, include_archived: bool,
) -> None:
    loop, store = loop_and_store
    truncate = min(truncate, head + 1)
    expected = model(head, max_count, truncate, state, include_archived)

    async def check() -> None:
        stream = uuid4()
        await append(store, stream, head)
        retention = StreamRetention(store)
        await retention.set_rule(
            stream, "Note", RetentionRule(max_count=max_count, truncate_before=truncate)
        )
        change = {"soft_deleted": retention.soft_delete, "archived": retention.archive,
                  "tombstoned": retention.tombstone}.get(state)
        if change is not None:
            await change(stream, "Note")
        for _ in range(2):  # before and after the purge
            with reading(include_archived=include_archived):
                if expected is None:
                    with pytest.raises(StreamTombstonedError):
                        await read(store, stream)
                else:
                    assert await read(store, stream) == (expected, head)
            await PurgeJob(store).run()
        if expected is not None:
            result = await store.append_events(
                stream, "Note", [Noted(aggregate_id=stream, text=str(head + 1))], head
            )
            assert result.new_version == head + 1

    loop.run_until_complete(check())
