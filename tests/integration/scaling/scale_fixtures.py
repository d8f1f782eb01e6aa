"""Fixtures of the scaling tests (import them into a test module): the backends, a fresh
SQLite file or a fresh PostgreSQL schema, with the event store's tables and the read model of
`scale_child.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from scale_child import open_store, prepare
from sqlalchemy.ext.asyncio import AsyncEngine

from eventsource.stores.interface import EventStore

Backend = tuple[EventStore, AsyncEngine]


@pytest.fixture(
    name="where", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def where_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "postgresql":
        return "postgresql", f"{request.getfixturevalue('pg_url')} " \
            f"{request.getfixturevalue('pg_schema')}"
    return "sqlite", str(tmp_path / "events.db")


@pytest.fixture(name="backend")
async def backend_fixture(where: tuple[str, str]) -> AsyncIterator[Backend]:
    await prepare(*where)
    async with open_store(*where) as opened:
        yield opened
