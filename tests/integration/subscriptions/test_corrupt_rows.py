"""Issue 12, item 3: one unreadable row (an older release's, written by hand, corrupted) between
good ones, on a SQLite file and on PostgreSQL.

Reads raise `CorruptEventError` carrying the row's global position, after the events before it
(and, from `read_committed`, with the cursor past it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from subs_integration_helpers import fresh_schema
from subscription_crash_child import open_backend

from eventsource import DomainEvent, register_event
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.repositories.dlq import DLQRepository
from eventsource.stores._rules import CorruptEventError
from eventsource.stores.interface import EventStore


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
