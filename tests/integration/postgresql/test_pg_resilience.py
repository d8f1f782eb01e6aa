"""The PostgreSQL store under hostile conditions: JIT-prone plans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from _pg_support import raw_connection, register  # type: ignore[import-not-found]
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from eventsource.stores.postgresql import PostgreSQLEventStore

pytestmark = pytest.mark.postgresql


@asynccontextmanager
async def opened_store(
    url: str, schema: str, *, application_name: str = "eventsource-test", port: int | None = None,
    **options: Any,
) -> AsyncIterator[tuple[PostgreSQLEventStore, AsyncEngine]]:
    """A store on its own engine, whose connections carry `application_name` (so a test can
    find their backends) and go to `port` if given (a proxy)."""
    target = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    if port is not None:
        target = target.replace(":5432/", f":{port}/", 1)
        assert f":{port}/" in target, "the test URL must name port 5432"
    engine = create_async_engine(
        target,
        pool_size=5,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name}
        },
    )
    register()
    store = PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False, **options)
    try:
        await store.initialize()
        yield store, engine
    finally:
        await store.close()
        await engine.dispose()


# -- plans: no JIT ------------------------------------------------------------------------------


async def test_no_statement_of_the_store_is_jit_compiled(pg_url: str, pg_schema: str) -> None:
    """The store's connections plan with sorts and scans disabled, which adds 10^10 to a plan's
    cost wherever one remains (the outbox append sorts the rows of a CTE): far above
    `jit_above_cost`, so PostgreSQL JIT-compiled the outbox append at every execution, 400 ms
    each. The control shows the server does exactly that with the planner settings alone."""
    from eventsource._sql.postgresql import _INDEX_PATHS_ONLY, _ONE_PLAN
    from eventsource.stores.postgresql import _APPEND_OUTBOX_SQL, _APPEND_SCOPED_OUTBOX_SQL

    types = "uuid, text, int, uuid[], text[], uuid[], text[], timestamptz[], text[]"
    values = (
        "gen_random_uuid(), 'PgCart', 0, ARRAY[gen_random_uuid()], ARRAY['PgItemAdded'],"
        " ARRAY[NULL::uuid], ARRAY[NULL::text], ARRAY[now()], ARRAY['{}']"
    )
    statements = [
        (f"PREPARE unscoped({types}) AS {_APPEND_OUTBOX_SQL}", f"EXECUTE unscoped({values})"),
        (
            f"PREPARE scoped({types}, uuid) AS {_APPEND_SCOPED_OUTBOX_SQL}",
            f"EXECUTE scoped({values}, gen_random_uuid())",
        ),
    ]
    async with opened_store(pg_url, pg_schema, outbox_enabled=True) as (store, _engine):
        control = await raw_connection(pg_url, pg_schema)
        try:
            await control.execute(f"{_INDEX_PATHS_ONLY}; {_ONE_PLAN}")
            assert store._pool is not None
            async with store._pool.connection("test", stable_plans=True) as conn:
                for prepare, execute in statements:
                    plans = []
                    for planner in (conn, control):
                        await planner.execute(prepare)
                        rows = await planner.fetch(f"EXPLAIN {execute}")
                        plans.append("\n".join(row[0] for row in rows))
                        await planner.execute(f"DEALLOCATE {prepare.split()[1].split('(')[0]}")
                    assert "JIT" not in plans[0], plans[0]
                    assert "JIT" in plans[1], plans[1]  # what the store's setting prevents
            for stable in (False, True):  # and every other statement: the same connections
                async with store._pool.connection("test", stable_plans=stable) as conn:
                    assert await conn.fetchval("SHOW jit") == "off"
        finally:
            await control.close()
