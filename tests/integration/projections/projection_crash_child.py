"""A process that runs a DatabaseProjection over a store from its checkpoint (killed by tests).

Usage: python projection_crash_child.py BACKEND LOCATION PAGE
  BACKEND  "postgresql" (LOCATION = "url schema") or "sqlite" (LOCATION = database file)
  PAGE     1 for `handle` per event, N for `handle_batch` pages of N events

The projection adds 1 to `rm_applied.applications` of each event it applies, so a test can
count applications per event id after killing and restarting this process.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from eventsource.events.base import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore

READ_MODEL = "CREATE TABLE IF NOT EXISTS rm_applied (event_id TEXT PRIMARY KEY, applications INT)"
_APPLY = text(
    "INSERT INTO rm_applied (event_id, applications) VALUES (:id, 1) "
    "ON CONFLICT (event_id) DO UPDATE SET applications = rm_applied.applications + 1"
)


class CrashTick(DomainEvent):
    event_type: str = "CrashTick"
    aggregate_type: str = "CrashClock"
    n: int


def register() -> None:
    if default_registry.get_or_none("CrashTick") is None:
        default_registry.register(CrashTick)


class CrashCounter(DatabaseProjection):
    @handles(CrashTick)
    async def _on_tick(self, conn: Any, event: CrashTick) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})


@asynccontextmanager
async def open_backend(
    backend: str, location: str
) -> AsyncIterator[tuple[EventStore, Any, CheckpointRepository]]:
    """The store, an SQLAlchemy session factory and a checkpoint repository on one database."""
    if backend == "postgresql":
        from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
        from eventsource.stores.postgresql import PostgreSQLEventStore

        url, schema = location.split()
        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            connect_args={"server_settings": {"search_path": schema}},
        )
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield PostgreSQLEventStore(sessions), sessions, PostgreSQLCheckpointRepository(sessions)
        finally:
            await engine.dispose()
    else:
        from eventsource.repositories.sqlite import SQLiteCheckpointRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        engine = create_async_engine(f"sqlite+aiosqlite:///{location}")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            async with SQLiteEventStore(location) as store:
                await store.initialize()
                yield store, sessions, SQLiteCheckpointRepository(store)
        finally:
            await engine.dispose()


async def run(backend: str, location: str, page: int) -> None:
    """Apply every event after the projection's checkpoint, in store order."""
    register()
    async with open_backend(backend, location) as (store, sessions, checkpoints):
        projection = CrashCounter(sessions, checkpoints)
        last = await checkpoints.get_checkpoint(projection_name=projection.projection_name)
        skipping = last is not None
        batch: list[DomainEvent] = []
        async for stored in store.read_all():
            if skipping:
                skipping = stored.event_id != last
                continue
            if page == 1:
                await projection.handle(stored.event)
                continue
            batch.append(stored.event)
            if len(batch) == page:
                await projection.handle_batch(batch)
                batch = []
        await projection.handle_batch(batch)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], int(sys.argv[3])))
