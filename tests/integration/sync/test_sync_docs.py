"""docs/sync.md's python blocks run as they are: the script (twice: the second run continues
from the first's events) and the Flask and Django sites, driven by their test clients. Each
runs in a process of its own, in a fresh directory, as a reader would run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from extras import import_extra

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory holding each block of docs/sync.md under the file name its first line
    gives (`# bank.py`)."""
    page = (ROOT / "docs" / "sync.md").read_text()
    for block in re.findall(r"^```python\n(.*?)^```", page, re.M | re.S):
        name = re.match(r"# (\w+\.py)\n", block)
        assert name is not None, f"a block of docs/sync.md does not name its file:\n{block}"
        (tmp_path / name[1]).write_text(block)
    assert {p.name for p in tmp_path.iterdir()} == {"bank.py", "flask_app.py", "django_site.py"}
    return tmp_path


def python(site: Path, *args: str) -> str:
    """Run python in `site` (this checkout's src/ first); its standard output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(site)])}
    done = subprocess.run(
        [sys.executable, *args], cwd=site, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_the_script_runs_and_continues_where_it_left_off(site: Path) -> None:
    assert python(site, "bank.py") == "balance 10 after 1 deposits\n"
    assert python(site, "bank.py") == "balance 20 after 2 deposits\n"


def test_the_flask_route_deposits(site: Path) -> None:
    import_extra("flask")
    account = uuid.uuid4()
    out = python(site, "-c", textwrap.dedent(f"""
        import json
        from flask_app import app
        client = app.test_client()
        for amount in ("5", "7"):
            reply = client.post("/accounts/{account}/deposits", data={{"amount": amount}})
            print(reply.status_code, json.dumps(reply.get_json(), sort_keys=True))
    """))
    assert out.splitlines() == [
        '200 {"balance": 5, "version": 1}',
        '200 {"balance": 12, "version": 2}',
    ]


def test_the_django_view_deposits(site: Path) -> None:
    import_extra("django")
    account = uuid.uuid4()
    out = python(site, "-c", textwrap.dedent(f"""
        import django
        import django_site
        django.setup()
        from django.test import Client
        client = Client()
        for amount in ("5", "7"):
            reply = client.post("/accounts/{account}/deposits", {{"amount": amount}})
            print(reply.status_code, reply.content.decode())
    """))
    replies = [line.split(" ", 1) for line in out.splitlines()]
    assert [(status, json.loads(body)) for status, body in replies] == [
        ("200", {"balance": 5, "version": 1}),
        ("200", {"balance": 12, "version": 2}),
    ]
