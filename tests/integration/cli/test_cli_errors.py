"""Bad input gives one clear line on stderr and the documented exit code; `--debug` adds the
traceback. Tenants: `--tenant` scopes every read, and a tenant without events is not found."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from cli_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    DEMO_APP,
    demo_url_fixture,
    fails,
    invoke,
    ok,
    ok_json,
    store_url_fixture,
)

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._context import Settings
from eventsource.cli._errors import ConflictError
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli.demo import REGISTRY, AccountOpened


def test_malformed_urls_are_usage_errors(tmp_path: Path) -> None:
    assert "scheme 'mysql' is not supported" in fails("mysql://x/y", "streams", "list", code=2)
    assert "has no scheme" in fails("events.db", "streams", "list", code=2)
    assert "three slashes" in fails("sqlite://host/x.db", "streams", "list", code=2)
    assert "needs a database file" in fails("sqlite:///:memory:", "streams", "list", code=2)
    line = fails("postgresql://u:secret@h:99999/db", "streams", "list", code=2)
    assert "secret" not in line
    assert "***" in line
    assert "pass --url" in fails(None, "streams", "list", code=2)


def test_debug_adds_the_traceback() -> None:
    result = invoke("mysql://x/y", "--debug", "streams", "list")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: store URL scheme")


def test_a_missing_sqlite_file_is_not_found_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    line = fails(f"sqlite:///{path}", "streams", "list", code=3)
    assert "does not exist" in line
    assert "db init" in line
    assert not path.exists()


@pytest.mark.postgresql
def test_an_unreachable_postgresql_server_is_one_line(pg_url: str) -> None:
    line = fails("postgresql://postgres@127.0.0.1:1/test", "streams", "list", code=1)
    assert line.startswith("error: cannot reach the database at postgresql://postgres@127.0.0.1:1")
    unknown = pg_url.rsplit("/", 1)[0] + f"/no_such_db_{uuid4().hex[:8]}"
    assert "does not exist" in fails(unknown, "streams", "list", code=3)
    result = invoke("postgresql://postgres@127.0.0.1:1/test", "--debug", "streams", "list")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_a_wrong_app_path_is_a_usage_error(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "no module named 'no_such_mod'" in fails(
        demo_url, "--app", "no_such_mod:app", "streams", "list", code=2
    )
    assert "has no attribute 'nope'" in fails(
        demo_url, "--app", "eventsource.cli.demo:nope", "streams", "list", code=2
    )
    assert "not of the form" in fails(demo_url, "--app", "x:", "streams", "list", code=2)
    assert "expected a CliApp" in fails(
        demo_url, "--app", "eventsource.cli.demo:ACCOUNT_1", "streams", "list", code=2
    )
    # A module of the user's that fails inside: its own error, exit 1, traceback on --debug.
    (tmp_path / "broken_app.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "broken_app", raising=False)
    line = fails(demo_url, "--app", "broken_app", "streams", "list", code=1)
    assert "ModuleNotFoundError" in line
    assert "no_such_dependency_xyz" in line


def test_an_app_module_in_the_current_directory_is_found(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_events_app.py").write_text(textwrap.dedent("""
        from eventsource.cli import CliApp
        from eventsource.cli.demo import REGISTRY

        def make():
            return CliApp(registry=REGISTRY)
    """))
    monkeypatch.chdir(tmp_path)
    shown = ok_json(demo_url, "--app", "my_events_app:make", "streams", "show", ACCOUNT_1)
    assert all(event["known"] for event in shown["events"])


def _append_for_tenant(url: str, tenant: UUID) -> UUID:
    async def append() -> UUID:
        db = await Backend.open(parse_url(url), BrowsingRegistry(REGISTRY), create=False)
        try:
            event = AccountOpened(aggregate_id=uuid4(), owner="Tenant", tenant_id=tenant)
            await db.store.append_events(event.aggregate_id, "Account", [event], 0)
            return event.aggregate_id
        finally:
            await db.close()

    return asyncio.run(append())


def test_tenant_scopes_reads_and_an_unknown_tenant_is_not_found(demo_url: str) -> None:
    tenant = uuid4()
    aggregate_id = _append_for_tenant(demo_url, tenant)
    scoped = ok_json(demo_url, "--tenant", str(tenant), "streams", "list")["streams"]
    assert [s["stream_id"] for s in scoped] == [f"{aggregate_id}:Account"]
    assert scoped[0]["tenant_id"] == str(tenant)
    assert len(ok_json(demo_url, "streams", "list")["streams"]) == 6
    assert "not found" in fails(demo_url, "--tenant", str(tenant), "streams", "show",
                                f"{ACCOUNT_1}:Account", code=3)
    counts = ok_json(demo_url, "--tenant", str(tenant), "events", "types")["types"]
    assert [(t["event_type"], t["count"]) for t in counts] == [("AccountOpened", 1)]
    other = uuid4()
    line = fails(demo_url, "--tenant", str(other), "streams", "list", code=3)
    assert f"tenant {other} has no events" in line
    assert "not a UUID" in fails(demo_url, "--tenant", "acme", "streams", "list", code=2)


async def test_the_runner_works_inside_a_running_event_loop(demo_url: str) -> None:
    """Called from a coroutine (a notebook, an async test), a command still runs."""
    assert asyncio.get_running_loop() is not None
    shown = ok_json(demo_url, "--app", DEMO_APP, "streams", "show", ACCOUNT_1)
    assert len(shown["events"]) == 4


async def test_act_refuses_when_the_state_changed_after_it_was_shown() -> None:
    settings = Settings(None, None, None, False, False)
    now = {"count": 3}

    async def read() -> int:
        return now["count"]

    await settings.act("plan", yes=True, read=read, shown=3)
    now["count"] = 4
    with pytest.raises(ConflictError, match="state changed"):
        await settings.act("plan", yes=True, read=read, shown=3)


def test_declining_in_a_pipe_changes_nothing(demo_url: str) -> None:
    result = invoke(demo_url, "snapshots", "invalidate", "--aggregate-type", "Account")
    assert result.exit_code == 1  # no input at all: the question goes unanswered
    assert "aborted: nothing was changed" in result.stderr
    assert len(ok_json(demo_url, "snapshots", "list")["snapshots"]) == 1
    ok(demo_url, "--version")


def test_the_app_module_of_docs_cli_md_runs_and_serves_as_app(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/cli.md's `--app` module, run as written, then used by the command line."""
    import re

    page = Path(__file__).parents[3] / "docs" / "cli.md"
    [block] = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.M | re.S)
    (tmp_path / "myapp_cli.py").write_text(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "myapp_cli", raising=False)
    types = ok_json(demo_url, "--app", "myapp_cli:cli_app", "events", "types")["types"]
    assert {t["event_type"] for t in types} >= {"AccountOpened"}
    assert "needs the projection(s) AccountBalances" in fails(
        demo_url, "--app", "myapp_cli:cli_app", "dlq", "retry", "1", "--yes", code=2
    )
