"""The database the issue-20 subscription tests run on: an SQLite file or a fresh PostgreSQL
schema, by the fixture's parameter (`BACKENDS`). One body for their `backend` fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from subs_integration_helpers import fresh_schema
from subscription_crash_child import open_backend, register

from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.stores.interface import EventStore

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@asynccontextmanager
async def upstream_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, EventStore, Any, CheckpointRepository]]:
    """(kind, store, SQLAlchemy session factory, checkpoint repository) on one database."""
    register()
    kind = request.param
    async with AsyncExitStack() as stack:
        if kind == "postgresql":
            url = request.getfixturevalue("pg_url")
            location = f"{url} {await stack.enter_async_context(fresh_schema(url))}"
        else:
            location = str(tmp_path / "events.db")
        store, sessions, checkpoints = await stack.enter_async_context(
            open_backend(kind, location)
        )
        yield kind, store, sessions, checkpoints
