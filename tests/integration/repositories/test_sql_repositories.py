"""What the SQL repositories do beyond the shared contracts: lag from the events table, tables
made beforehand, writing inside a caller's transaction, and DatabaseProjection's transaction."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from eventsource.events.base import DomainEvent
from eventsource.events.registry import register_event
from eventsource.exceptions import ProjectionError
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.dlq import InMemoryDLQRepository
from eventsource.stores.interface import EventStore

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@register_event
class LagTick(DomainEvent):
    event_type: str = "LagTick"
    aggregate_type: str = "LagClock"
    poison: bool = False


@register_event
class Other(DomainEvent):
    event_type: str = "LagOther"
    aggregate_type: str = "LagClock"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        from conftest import require_postgres

        require_postgres()
    return str(request.param)


@asynccontextmanager
async def _database(backend: str, tmp_path: Path) -> AsyncIterator[tuple[EventStore, Any]]:
    """A store and an SQLAlchemy session factory on one fresh database."""
    if backend == "sqlite":
        from eventsource.stores.sqlite import SQLiteEventStore

        database = tmp_path / "events.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
        async with SQLiteEventStore(str(database)) as store:
            await store.initialize()
            yield store, async_sessionmaker(engine, expire_on_commit=False)
        await engine.dispose()
        return
    from conftest import PG_URL
    from eventsource.stores.postgresql import PostgreSQLEventStore

    schema = f"q_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(
        PG_URL.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield PostgreSQLEventStore(sessions), sessions
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


def _checkpoints(backend: str, store: EventStore, sessions: Any) -> Any:
    if backend == "sqlite":
        from eventsource.repositories.sqlite import SQLiteCheckpointRepository

        return SQLiteCheckpointRepository(store)  # type: ignore[arg-type]
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository

    return PostgreSQLCheckpointRepository(sessions)


async def test_lag_is_newest_subscribed_event_minus_last_processed(
    backend: str, tmp_path: Path
) -> None:
    async with _database(backend, tmp_path) as (store, sessions):
        clock = uuid.uuid4()
        later = datetime.now(UTC) + timedelta(hours=1)
        newest = LagTick(aggregate_id=clock, occurred_at=later)
        other = Other(aggregate_id=clock, occurred_at=later + timedelta(hours=1))
        events = [LagTick(aggregate_id=clock), newest, other]
        await store.append_events(clock, "LagClock", events, expected_version=0)
        repo = _checkpoints(backend, store, sessions)
        await repo.update_checkpoint(
            projection_name="P", event_id=events[0].event_id, event_type="LagTick"
        )
        metrics = await repo.get_lag_metrics(projection_name="P", event_types=["LagTick"])
        assert metrics.latest_event_id == str(newest.event_id)
        assert 3500 < metrics.lag_seconds <= 3600
        everything = await repo.get_lag_metrics(projection_name="P")
        assert everything.latest_event_id == str(other.event_id)
        assert 7100 < everything.lag_seconds <= 7200
        caught_up = await repo.get_lag_metrics(projection_name="P", event_types=["Nothing"])
        assert (caught_up.latest_event_id, caught_up.lag_seconds) == (None, 0.0)


class Counter(DatabaseProjection):
    MAX_RETRIES = 1  # one attempt, then the dead-letter queue

    @handles(LagTick)
    async def _on_tick(self, conn: Any, event: LagTick) -> None:
        await conn.execute(
            text("INSERT INTO rm_ticks (event_id) VALUES (:id)"), {"id": str(event.event_id)}
        )
        if event.poison:
            raise ValueError("poison")


async def test_failed_event_rolls_back_read_model_and_checkpoint(
    backend: str, tmp_path: Path
) -> None:
    async with _database(backend, tmp_path) as (store, sessions):
        async with sessions() as session, session.begin():
            await session.execute(text("CREATE TABLE rm_ticks (event_id TEXT PRIMARY KEY)"))
        repo = _checkpoints(backend, store, sessions)
        dlq = InMemoryDLQRepository()
        projection = Counter(sessions, repo, dlq)
        good = [LagTick(aggregate_id=uuid.uuid4()) for _ in range(3)]
        poison = LagTick(aggregate_id=uuid.uuid4(), poison=True)
        await projection.handle(good[0])
        with pytest.raises(ProjectionError):
            await projection.handle(poison)
        assert await projection.get_checkpoint() == str(good[0].event_id)
        # A page with a poison event is rolled back whole, then handled one event at a time.
        with pytest.raises(ProjectionError):
            await projection.handle_batch([good[1], poison, good[2]])
        async with sessions() as session:
            rows = (await session.execute(text("SELECT event_id FROM rm_ticks"))).scalars().all()
        assert sorted(rows) == sorted(str(e.event_id) for e in good[:2])
        assert await projection.get_checkpoint() == str(good[1].event_id)
        data = await repo.get_checkpoint_data(projection_name="Counter")
        assert data.events_processed == 2
        assert [e.event_id for e in await dlq.get_failed_events()] == [poison.event_id]


@pytest.mark.postgresql
async def test_postgresql_tables_made_from_the_documented_columns_work(
    pg_session_factory: Any,
) -> None:
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository

    async with pg_session_factory() as session, session.begin():
        await session.execute(
            text(
                "CREATE TABLE projection_checkpoints (projection_name VARCHAR(255) PRIMARY KEY, "
                "last_event_id UUID, last_event_type VARCHAR(255), "
                "last_processed_at TIMESTAMPTZ, global_position BIGINT, "
                "events_processed BIGINT DEFAULT 0, created_at TIMESTAMPTZ DEFAULT NOW(), "
                "updated_at TIMESTAMPTZ DEFAULT NOW())"
            )
        )
        await session.execute(
            text(
                "INSERT INTO projection_checkpoints (projection_name, events_processed) "
                "VALUES ('old', NULL)"
            )
        )
    repo = PostgreSQLCheckpointRepository(pg_session_factory)
    event_id = uuid.uuid4()
    await repo.save_position("old", 5, event_id, "A", cursor="c:5")
    assert await repo.get_cursor("old") == "c:5"
    data = await repo.get_checkpoint_data(projection_name="old")
    assert data is not None
    assert (data.last_event_id, data.global_position, data.events_processed) == (event_id, 5, 1)


@pytest.mark.postgresql
async def test_postgresql_connection_in_a_transaction_leaves_the_commit_to_its_owner(
    pg_session_factory: Any,
) -> None:
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository

    engine = pg_session_factory.kw["bind"]
    await PostgreSQLCheckpointRepository(engine).get_checkpoint(projection_name="warm-up")
    async with engine.connect() as conn:
        repo = PostgreSQLCheckpointRepository(conn)
        await conn.begin()
        await repo.update_checkpoint(projection_name="P", event_id=uuid.uuid4(), event_type="A")
        assert await repo.get_checkpoint(projection_name="P") is not None
        await conn.rollback()
        assert await repo.get_checkpoint(projection_name="P") is None
        await repo.update_checkpoint(projection_name="P", event_id=uuid.uuid4(), event_type="A")
    outside = PostgreSQLCheckpointRepository(engine)
    assert await outside.get_checkpoint(projection_name="P") is not None


async def test_sqlite_connection_in_implicit_transaction_mode_commits(tmp_path: Path) -> None:
    import aiosqlite

    from eventsource.repositories.sqlite import SQLiteDLQRepository

    database = tmp_path / "dlq.db"
    async with aiosqlite.connect(database) as conn:  # sqlite3's default: implicit BEGIN
        await SQLiteDLQRepository(conn).add_failed_event(
            uuid.uuid4(), "P", "A", {"x": 1}, ValueError("boom"), retry_count=1
        )
    async with aiosqlite.connect(database) as conn:
        [entry] = await SQLiteDLQRepository(conn).get_failed_events()
    assert (entry.error_message, entry.event_data) == ("boom", '{"x": 1}')


def test_importing_repositories_loads_no_driver() -> None:
    probe = (
        "import sys, eventsource.repositories; "
        "print([m for m in ('aiosqlite', 'sqlalchemy', 'asyncpg') if m in sys.modules])"
    )
    src = str(Path(__file__).resolve().parents[3] / "src")
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src},
    )
    assert done.stdout.strip() == "[]"
