"""Fixtures of the evolution tests: a backend per store (SQLite file, PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from evo_support import Backend, evolution, postgresql_backend, sqlite_backend

from eventsource import EventRegistry
from eventsource.evolution import Upcasters


@pytest.fixture
def evolved() -> tuple[EventRegistry, Upcasters]:
    return evolution()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, evolved: tuple[EventRegistry, Upcasters]
) -> AsyncIterator[Backend]:
    registry = evolved[0]
    if request.param == "postgresql":
        async with postgresql_backend(request.getfixturevalue("pg_url"), registry) as found:
            yield found
    else:
        async with sqlite_backend(str(tmp_path / "events.db"), registry) as found:
            yield found
