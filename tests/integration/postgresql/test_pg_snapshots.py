"""PostgreSQLSnapshotStore against the real server: what it accepts, racing first uses on a table
made from the documented columns, concurrent saves, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from eventsource.snapshots import PostgreSQLSnapshotStore
from eventsource.tenancy import tenant_scope
from eventsource.testing.contract.snapshot import DOCUMENTED_TABLE, make_snapshot

pytestmark = pytest.mark.postgresql


@pytest.fixture
async def engine(pg_url: str, pg_schema: str) -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(
        pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": pg_schema}},
    )
    yield made
    await made.dispose()


async def test_takes_a_session_factory_an_engine_or_a_connection(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)
    by_factory = PostgreSQLSnapshotStore(factory)
    assert by_factory.session_factory is factory
    saved = make_snapshot()
    await by_factory.save_snapshot(saved)
    assert await PostgreSQLSnapshotStore(engine).get_snapshot(saved.aggregate_id, "Order") == saved
    async with engine.connect() as conn:
        by_connection = PostgreSQLSnapshotStore(conn)
        assert await by_connection.get_snapshot(saved.aggregate_id, "Order") == saved
    with pytest.raises(TypeError, match="async_sessionmaker"):
        PostgreSQLSnapshotStore("postgresql://nowhere")  # type: ignore[arg-type]


async def test_racing_first_uses_upgrade_a_documented_table_once(
    pg_url: str, pg_schema: str
) -> None:
    admin = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
    try:
        await admin.execute(DOCUMENTED_TABLE["postgresql"])
        engines = [
            create_async_engine(
                pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
                connect_args={"server_settings": {"search_path": pg_schema}},
            )
            for _ in range(6)
        ]
        try:
            stores = [PostgreSQLSnapshotStore(async_sessionmaker(e)) for e in engines]
            tenant = uuid4()

            async def first_use(store: PostgreSQLSnapshotStore) -> None:
                with tenant_scope(tenant):
                    await store.save_snapshot(make_snapshot())

            await asyncio.gather(*(first_use(store) for store in stores))
        finally:
            for made in engines:
                await made.dispose()
        columns = await admin.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'snapshots'::regclass "
            "AND attname = 'tenant_id' AND NOT attisdropped"
        )
        assert len(columns) == 1
        assert (
            await admin.fetchval("SELECT count(*) FROM snapshots WHERE tenant_id = $1", tenant) == 6
        )
    finally:
        await admin.close()


async def test_concurrent_saves_of_one_aggregate_leave_one_whole_row(engine: AsyncEngine) -> None:
    store = PostgreSQLSnapshotStore(async_sessionmaker(engine))
    aggregate_id = uuid4()
    candidates = [
        make_snapshot(aggregate_id, version=n, state={"n": n, "pad": "x" * n}) for n in range(30)
    ]
    await asyncio.gather(*(store.save_snapshot(s) for s in candidates))
    found = await store.get_snapshot(aggregate_id, "Order")
    assert found in candidates  # one of them, whole: never fields of two
    assert await store.delete_snapshots_by_type("Order") == 1


async def test_bad_input_is_rejected_with_a_clear_error(engine: AsyncEngine) -> None:
    store = PostgreSQLSnapshotStore(engine)
    bad_id: Any = make_snapshot()
    object.__setattr__(bad_id, "aggregate_id", "not-a-uuid")
    with pytest.raises(TypeError, match="aggregate_id must be a UUID"):
        await store.save_snapshot(bad_id)
    with pytest.raises(TypeError, match="needs a Snapshot"):
        await store.save_snapshot({"aggregate_id": uuid4()})  # type: ignore[arg-type]
