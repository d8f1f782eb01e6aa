"""`eventsource web`: bad input is one line and an exit code before anything listens; the
served app answers over real HTTP (uvicorn in a thread, on a free port)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from web_support import (  # noqa: F401 - fixtures
    console_script,
    demo_url_fixture,
    fails,
    store_url_fixture,
)

_SERVE = ["web", "--port", "1"]  # never reached: every case fails before serving


def test_a_malformed_url_is_a_usage_error() -> None:
    line = fails("mysql://x/y", *_SERVE, code=2)
    assert line == (
        "error: store URL scheme 'mysql' is not supported: use sqlite:///path.db or "
        "postgresql://user@host:5432/dbname"
    )
    assert "needs a file path" in fails("sqlite://events.db", *_SERVE, code=2)


def test_a_missing_file_and_an_unreachable_server_are_one_line(tmp_path: Path) -> None:
    assert "does not exist" in fails(f"sqlite:///{tmp_path / 'none.db'}", *_SERVE, code=3)
    line = fails("postgresql://postgres:secret@127.0.0.1:1/test", *_SERVE, code=1)
    assert line.startswith("error: cannot reach the database at postgresql://postgres:***@")
    assert "secret" not in line


def test_a_wrong_app_path_and_an_unknown_tenant(demo_url: str) -> None:
    assert "no module named 'no_such_module'" in fails(
        demo_url, "--app", "no_such_module:app", *_SERVE, code=2
    )
    assert "has no attribute 'nothing'" in fails(
        demo_url, "--app", "eventsource.cli.demo:nothing", *_SERVE, code=2
    )
    tenant = "7e000000-0000-4000-8000-000000000009"
    assert f"tenant {tenant} has no events" in fails(
        demo_url, "--tenant", tenant, *_SERVE, code=3
    )
    assert "is not a UUID" in fails(demo_url, "--tenant", "acme", *_SERVE, code=2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # uvicorn's websockets imports
def test_the_served_app_answers_over_http(demo_url: str) -> None:
    from web_server import serve

    with serve(demo_url) as base:
        with urllib.request.urlopen(f"{base}/api/dashboard", timeout=10) as response:
            dashboard = json.loads(response.read())
        with urllib.request.urlopen(f"{base}/static/app.js", timeout=10) as response:
            script = response.read().decode()
    assert dashboard["head_position"] == 11
    assert "EventSource" in script


def test_the_console_script_serves_read_only_on_localhost(demo_url: str) -> None:
    from web_server import _free_port

    port = _free_port()
    server = subprocess.Popen(
        [console_script(), "--url", demo_url, "web", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        dashboard = _poll(f"http://127.0.0.1:{port}/api/dashboard", server)
        csrf = _poll(f"http://127.0.0.1:{port}/api/csrf", server)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert dashboard["head_position"] == 11
    assert csrf["writes"] is False
    assert f"on http://127.0.0.1:{port}/ (read-only)" in stderr
    assert "Traceback" not in stderr


def _poll(url: str, server: subprocess.Popen[str]) -> dict[str, object]:
    """The JSON at `url` once the server answers (it has 30 s to start)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                found: dict[str, object] = json.loads(response.read())
                return found
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
