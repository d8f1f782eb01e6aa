"""Running the command line in-process (Click's CliRunner) and reading its output, and the
stores it runs against: a real SQLite file and a real PostgreSQL schema (fixtures, imported
by each test module: a `conftest.py` here would shadow the suite's own `conftest`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from eventsource.cli.app import cli

ACCOUNT_1 = "a1000000-0000-4000-8000-000000000001"
ORDER_1 = "0d000000-0000-4000-8000-000000000001"
DEMO_APP = "eventsource.cli.demo:app"


def invoke(url: str | None, *args: str, input: str | None = None) -> Result:
    """`eventsource --url URL ARGS...`, in this process (no EVENTSOURCE_* from outside)."""
    runner = CliRunner(env={"EVENTSOURCE_URL": None, "EVENTSOURCE_APP": None})
    head = ["--url", url] if url is not None else []
    return runner.invoke(cli, [*head, *args], input=input, catch_exceptions=False)


def ok(url: str | None, *args: str, input: str | None = None) -> Result:
    result = invoke(url, *args, input=input)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def ok_json(url: str | None, *args: str) -> Any:
    return json.loads(ok(url, "--json", *args).stdout)


def fails(url: str | None, *args: str, code: int, input: str | None = None) -> str:
    """Run a command that must exit with `code`, printing one line on stderr (no traceback);
    that line."""
    result = invoke(url, *args, input=input)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def console_script() -> str:
    """The installed `eventsource` script of this environment."""
    found = shutil.which("eventsource", path=os.path.dirname(sys.executable))
    assert found is not None, "the console script is not installed: pip install -e '.[dev]'"
    return found


@pytest.fixture(
    name="store_url",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store: a new SQLite file path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    pg_url = request.getfixturevalue("pg_url")
    schema = request.getfixturevalue("pg_schema")
    return f"{pg_url}?schema={schema}"


@pytest.fixture(name="demo_url")
def demo_url_fixture(store_url: str) -> str:
    """A store seeded by `eventsource demo`."""
    ok(store_url, "demo", "--yes")
    return store_url
