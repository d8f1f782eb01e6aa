"""The installed `eventsource` script, run as an operator runs it: a real process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from uuid import uuid4

from cli_support import (
    ACCOUNT_1,
    DEMO_APP,
    console_script,
    store_url_fixture,  # noqa: F401 - fixtures
)

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli.demo import REGISTRY, OrderPlaced


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSOURCE_")}
    return subprocess.run(
        [console_script(), "--url", url, *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


def test_the_script_seeds_shows_and_reports_a_missing_stream(store_url: str) -> None:
    assert _run(store_url, "demo", "--yes").returncode == 0
    shown = _run(store_url, "--json", "--app", DEMO_APP, "streams", "show", ACCOUNT_1)
    assert shown.returncode == 0, shown.stderr
    assert [e["stream_position"] for e in json.loads(shown.stdout)["events"]] == [1, 2, 3, 4]
    missing = _run(store_url, "streams", "show", f"{uuid4()}:Account")
    assert missing.returncode == 3
    assert missing.stdout == ""
    assert len(missing.stderr.splitlines()) == 1
    assert "not found" in missing.stderr
    empty = _run(store_url, "subscriptions", "status", "nope")
    assert empty.returncode == 3
    assert "Traceback" not in empty.stderr


def _append_order(url: str) -> str:
    async def append() -> str:
        db = await Backend.open(parse_url(url), BrowsingRegistry(REGISTRY), create=False)
        try:
            event = OrderPlaced(aggregate_id=uuid4(), items=3, total=9.0)
            await db.store.append_events(event.aggregate_id, "Order", [event], 0)
            return str(event.event_id)
        finally:
            await db.close()

    return asyncio.run(append())


def test_tail_follow_prints_events_committed_by_another_process(store_url: str) -> None:
    assert _run(store_url, "demo", "--yes").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSOURCE_")}
    with subprocess.Popen(  # leaving the block closes the pipes
        [console_script(), "--url", store_url, "--json", "events", "tail", "--follow",
         "--last", "1", "--type", "OrderPlaced", "--type", "MoneyWithdrawn"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as follower:
        try:
            assert follower.stdout is not None
            first = json.loads(follower.stdout.readline())
            assert first["global_position"] == 11  # the last event, then new ones
            appended = [_append_order(store_url) for _ in range(3)]
            seen = [json.loads(follower.stdout.readline())["event_id"] for _ in appended]
            assert seen == appended
            follower.send_signal(signal.SIGINT)  # Ctrl-C ends a follow, as success
            started = time.monotonic()
            assert follower.wait(timeout=15) == 0
            assert time.monotonic() - started < 15
            assert "Traceback" not in follower.stderr.read()  # type: ignore[union-attr]
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
