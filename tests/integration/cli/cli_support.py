"""Running the command line in-process (Click's CliRunner) and reading its output."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

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
