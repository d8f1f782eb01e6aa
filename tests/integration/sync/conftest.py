"""Fixtures of the synchronous-API tests: they run in threads without an event loop, so the
PostgreSQL schema is made here synchronously (the shared fixtures are async)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from eventsource.sync import Portal


@pytest.fixture
def portal() -> Iterator[Portal]:
    """A portal of the test's own, closed afterwards (the default one is shared)."""
    with Portal(f"test-{uuid.uuid4().hex[:6]}") as made:
        yield made


@pytest.fixture
def pg_engine_options(pg_url: str) -> Iterator[dict[str, Any]]:
    """Engine options putting everything in a fresh schema, dropped afterwards."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE SCHEMA "{name}"'))
    try:
        yield {"connect_args": {"server_settings": {"search_path": name}}}
    finally:
        asyncio.run(execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
