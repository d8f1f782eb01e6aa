"""DatabaseProjection on PostgreSQL writing one read-model row per event (issue 4, item 7).

    PYTHONPATH=src python benchmarks/database_projection.py [EVENTS]

Three ways over the same stored events, each into an empty read model and checkpoint:
`handle` per event (one transaction each), `handle_batch` pages with one statement per event,
and `handle_batch` pages whose `_process_batch` writes the page with one executemany.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from eventsource._sql.postgresql import asyncpg_url
from eventsource.events.base import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
from eventsource.stores.postgresql import PostgreSQLEventStore

URL = asyncpg_url(
    os.environ.get("EVENTSOURCE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
PAGE = 1000
_INSERT = text("INSERT INTO rm_rows (event_id, n) VALUES (:id, :n)")


class BenchRow(DomainEvent):
    event_type: str = "BenchRow"
    aggregate_type: str = "Bench"
    n: int


class RowPerEvent(DatabaseProjection):
    @handles(BenchRow)
    async def _on_row(self, conn: Any, event: BenchRow) -> None:
        await conn.execute(_INSERT, {"id": event.event_id, "n": event.n})


class RowPerEventPaged(RowPerEvent):
    async def _process_batch(self, conn: Any, events: Sequence[DomainEvent]) -> None:
        rows = [{"id": e.event_id, "n": e.n} for e in events if isinstance(e, BenchRow)]
        await conn.execute(_INSERT, rows)


async def _run(label: str, sessions: Any, events: list[DomainEvent], mode: str) -> None:
    cls = RowPerEventPaged if mode == "paged" else RowPerEvent
    projection = cls(sessions, PostgreSQLCheckpointRepository(sessions))
    await projection.reset()  # creates the checkpoint table: not what we measure
    async with sessions() as session, session.begin():
        await session.execute(text("TRUNCATE rm_rows"))
    started = time.perf_counter()
    if mode == "single":
        for event in events:
            await projection.handle(event)
    else:
        for start in range(0, len(events), PAGE):
            await projection.handle_batch(events[start : start + PAGE])
    elapsed = time.perf_counter() - started
    data = await projection.checkpoint_repo.get_checkpoint_data(
        projection_name=projection.projection_name
    )
    assert data is not None
    assert data.events_processed == len(events)
    print(f"{label:<44} {len(events) / elapsed:>9,.0f} events/s ({elapsed:.2f} s)")


async def main(total: int) -> None:
    default_registry.register(BenchRow)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(
        URL.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(text("CREATE TABLE rm_rows (event_id UUID PRIMARY KEY, n INT)"))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        store = PostgreSQLEventStore(sessions)
        aggregate = uuid.uuid4()
        for start in range(0, total, 500):
            batch = [BenchRow(aggregate_id=aggregate, n=n) for n in range(start, start + 500)]
            await store.append_events(aggregate, "Bench", batch, expected_version=start)
        events = [stored.event async for stored in store.read_all()]
        await _run("handle_batch, executemany per page", sessions, events, "paged")
        await _run(f"handle_batch ({PAGE}/page), a statement per event", sessions, events, "batch")
        await _run("handle, a transaction per event", sessions, events[:2000], "single")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
