"""The command line against a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from extras import require_extra


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store: a new SQLite file path, or a fresh PostgreSQL schema."""
    require_extra("click", "rich")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    pg_url = request.getfixturevalue("pg_url")
    schema = request.getfixturevalue("pg_schema")
    return f"{pg_url}?schema={schema}"


@pytest.fixture
def demo_url(store_url: str) -> str:
    """A store seeded by `eventsource demo`."""
    from cli_support import ok

    ok(store_url, "demo", "--yes")
    return store_url
