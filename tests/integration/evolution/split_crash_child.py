"""A process running a DatabaseProjection over split events from its checkpoint (killed by
tests/integration/evolution/test_split_crash.py).

Usage: python split_crash_child.py BACKEND LOCATION GATE
  BACKEND   "postgresql" (LOCATION = "url schema") or "sqlite" (LOCATION = database file)
  GATE      a file path: until it exists, the handler of the part moving a customer to "GATE"
            writes GATE + ".stuck" and waits forever, in the middle of that split's parts
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from evo_support import CustomerMoved, CustomerRenamed, CustomerSignedUp, evolution
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from eventsource import DomainEvent, EventRegistry
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager

READ_MODEL = "CREATE TABLE IF NOT EXISTS rm_parts (event_id TEXT PRIMARY KEY, applications INT)"
_APPLY = text(
    "INSERT INTO rm_parts (event_id, applications) VALUES (:id, 1) "
    "ON CONFLICT (event_id) DO UPDATE SET applications = rm_parts.applications + 1"
)
PAGE = 8


class PartsApplied(DatabaseProjection):
    """Counts applications per event id; stuck on the "GATE" part until the gate opens."""

    gate = Path("/nonexistent")

    async def _apply(self, conn: Any, event: DomainEvent) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})

    @handles(CustomerSignedUp)
    async def _signed_up(self, conn: Any, event: CustomerSignedUp) -> None:
        await self._apply(conn, event)

    @handles(CustomerRenamed)
    async def _renamed(self, conn: Any, event: CustomerRenamed) -> None:
        await self._apply(conn, event)

    @handles(CustomerMoved)
    async def _moved(self, conn: Any, event: CustomerMoved) -> None:
        await self._apply(conn, event)
        if event.city == "GATE" and not self.gate.exists():
            await asyncio.to_thread(Path(f"{self.gate}.stuck").write_text, "mid-split")
            await asyncio.Event().wait()


@asynccontextmanager
async def open_backend(
    backend: str, location: str, registry: EventRegistry
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
        store = PostgreSQLEventStore(sessions, event_registry=registry)
        try:
            yield store, sessions, PostgreSQLCheckpointRepository(sessions)
        finally:
            await store.close()
            await engine.dispose()
    else:
        from eventsource.repositories.sqlite import SQLiteCheckpointRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        engine = create_async_engine(f"sqlite+aiosqlite:///{location}")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            async with SQLiteEventStore(location, event_registry=registry) as sqlite_store:
                await sqlite_store.initialize()
                yield sqlite_store, sessions, SQLiteCheckpointRepository(sqlite_store)
        finally:
            await engine.dispose()


async def run(backend: str, location: str, gate: str) -> None:
    """Follow the store from the checkpoint forever (the test kills this process)."""
    registry, _ = evolution()
    PartsApplied.gate = Path(gate)
    async with open_backend(backend, location, registry) as (store, sessions, checkpoints):
        manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
        manager.poll_interval = 0.05
        config = SubscriptionConfig(start_from="checkpoint", batch_size=PAGE)
        await manager.subscribe(PartsApplied(sessions, checkpoints), config)
        async with manager:
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
