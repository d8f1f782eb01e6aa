"""Events, stores and helpers shared by the retention tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from conftest import require_postgres
from eventsource import DomainEvent
from eventsource.stores.interface import EventStore
from eventsource.stores.sqlite import SQLiteEventStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Noted(DomainEvent):
    event_type: str = "Noted"
    aggregate_type: str = "Note"
    text: str = ""


@asynccontextmanager
async def sqlite_store(path: Path) -> AsyncIterator[SQLiteEventStore]:
    """An initialized SQLiteEventStore on the file `path` that reads `Noted`."""
    async with SQLiteEventStore(str(path)) as store:
        await store.initialize()
        store.event_registry.register(Noted)
        yield store


@asynccontextmanager
async def postgresql_store(**options: Any) -> AsyncIterator[EventStore]:
    """A PostgreSQLEventStore over a fresh schema, dropped afterwards."""
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.stores.postgresql import PostgreSQLEventStore

    url = require_postgres()
    schema = f"r_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=12,
        connect_args={"server_settings": {"search_path": schema}},
    )
    pg = PostgreSQLEventStore(async_sessionmaker(engine), **options)
    try:
        await pg.initialize()
        pg.event_registry.register(Noted)
        yield pg
    finally:
        await pg.close()
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


# The retention tests' `store` fixture (imported by each test module): a real SQLite file,
# and the real PostgreSQL.
@pytest.fixture(
    name="store", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
async def store_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[EventStore]:
    if request.param == "sqlite":
        async with sqlite_store(tmp_path / "events.db") as sqlite:
            yield sqlite
        return
    async with postgresql_store() as pg:
        yield pg


async def append(store: EventStore, stream: UUID, count: int, *, start: int = 0,
                 at: datetime | None = None, step: timedelta = timedelta(minutes=1)) -> None:
    """`count` events at versions after `start`, occurring `step` apart from `at`."""
    events = [
        Noted(aggregate_id=stream, text=str(start + n + 1),
              **({} if at is None else {"occurred_at": at + step * n}))
        for n in range(count)
    ]
    await store.append_events(stream, "Note", events, start)


def versions(events: list[DomainEvent]) -> list[int]:
    return [int(getattr(event, "text", "0")) for event in events]


async def read(store: EventStore, stream: UUID) -> tuple[list[int], int]:
    """The stream's visible versions (each event's text) and its version."""
    found = await store.get_events(stream, "Note")
    return versions(found.events), found.version


async def next_position(store: EventStore) -> int:
    """The position an append to a new stream gets."""
    other = uuid4()
    result = await store.append_events(other, "Note", [Noted(aggregate_id=other)], 0)
    return result.global_position
