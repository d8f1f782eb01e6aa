"""The transfer and projection commands through Click's CliRunner: export, import, copy,
projections rebuild and reset, their questions and their exit codes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from transfer_support import (
    REBUILT,
    CartTotals,
    expected_types,
    fresh_pg_store,
    seed,
    sqlite_store,
    stream_types,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from cli_support import fails, invoke, ok

from eventsource.repositories.checkpoint import InMemoryCheckpointRepository
from eventsource.subscriptions.config import SubscriptionConfig
from eventsource.subscriptions.manager import SubscriptionManager
from eventsource.subscriptions.subscription import SubscriptionState

APP = "transfer_support:cli_app"


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


async def _seeded(path: Path, count: int) -> None:
    async with sqlite_store(path) as store:
        await seed(store, count)


async def _types(path: Path) -> dict[str, list[str]]:
    async with sqlite_store(path) as store:
        return await stream_types(store)


def test_export_then_import_round_trips_and_asks_before_replacing(tmp_path: Path) -> None:
    asyncio.run(_seeded(tmp_path / "a.db", 300))
    source = _sqlite_url(tmp_path / "a.db")
    ok(source, "export", str(tmp_path / "a.jsonl"))
    # The file exists now: replacing it is asked, and "no" changes nothing.
    before = (tmp_path / "a.jsonl").read_bytes()
    declined = invoke(source, "export", str(tmp_path / "a.jsonl"), input="n\n")
    assert declined.exit_code == 1
    assert "Will replace" in declined.stderr
    assert (tmp_path / "a.jsonl").read_bytes() == before
    target = _sqlite_url(tmp_path / "b.db")
    result = ok(target, "--json", "import", str(tmp_path / "a.jsonl"), "--yes")
    assert json.loads(result.stdout)["events_written"] == len(before.splitlines())
    ok(target, "export", str(tmp_path / "b.jsonl"))
    assert (tmp_path / "b.jsonl").read_bytes() == before
    # Run again: the job has it all; nothing is written twice.
    again = ok(target, "--json", "import", str(tmp_path / "a.jsonl"), "--yes")
    assert json.loads(again.stdout)["events_written"] == len(before.splitlines())


def test_import_refuses_a_missing_file_and_names_a_bad_line(tmp_path: Path) -> None:
    target = _sqlite_url(tmp_path / "b.db")
    assert "no file" in fails(target, "import", str(tmp_path / "nope.jsonl"), "--yes", code=3)
    assert "--tenant is not supported" in fails(
        target, "--tenant", "a1000000-0000-4000-8000-000000000001", "export", "x.jsonl",
        code=2,
    )
    (tmp_path / "bad.jsonl").write_text("{}\n", encoding="utf-8")
    line = fails(target, "import", str(tmp_path / "bad.jsonl"), "--yes", code=1)
    assert "line 1: missing position" in line


@pytest.fixture(
    name="target_url",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def target_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return _sqlite_url(tmp_path / "target.db")
    pg_url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
    return f"{pg_url}?schema={schema}"


def test_copy_through_a_transform_and_its_questions(tmp_path: Path, target_url: str) -> None:
    asyncio.run(_seeded(tmp_path / "a.db", 400))
    source = _sqlite_url(tmp_path / "a.db")
    args = ["--app", APP, "copy", "--to", target_url, "--transform",
            "transfer_support:merge_priced", "--batch-size", "37"]
    declined = invoke(source, *args, input="n\n")
    assert declined.exit_code == 1
    assert "Will copy the" in declined.stderr
    assert "through transfer_support:merge_priced" in declined.stderr
    result = ok(source, "--json", *args, "--yes")
    assert json.loads(result.stdout)["events_read"] > 0
    assert asyncio.run(_target_types(target_url)) == expected_types(
        asyncio.run(_types(tmp_path / "a.db"))
    )
    assert "resuming after position" in invoke(source, *args, input="n\n").stderr


async def _target_types(url: str) -> dict[str, list[str]]:
    from transfer_support import REGISTRY

    from eventsource.cli._backend import Backend, parse_url
    from eventsource.cli._events import BrowsingRegistry

    db = await Backend.open(parse_url(url), BrowsingRegistry(REGISTRY), create=False)
    try:
        return await stream_types(db.store)
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("spec", "code", "says"),
    [
        ("nomodule_here:fn", 2, "no module named 'nomodule_here'"),
        ("transfer_support", 2, "not of the form module:function"),
        ("transfer_support:nothing", 2, "has no 'nothing'"),
        ("transfer_support:REGISTRY", 2, "not a function"),
        ("transfer_support:cart_events", 1, "the transform failed on event"),
    ],
)
def test_a_bad_transform_is_a_usage_error_or_a_named_failure(
    tmp_path: Path, spec: str, code: int, says: str
) -> None:
    asyncio.run(_seeded(tmp_path / "a.db", 20))
    line = fails(_sqlite_url(tmp_path / "a.db"), "--app", APP, "copy", "--to",
                 _sqlite_url(tmp_path / "b.db"), "--transform", spec, "--yes", code=code)
    assert says in line


async def _live_totals(path: Path) -> dict[Any, tuple[int, int]]:
    """CartTotals kept by a live subscription while more events are appended."""
    async with sqlite_store(path) as store:
        live = CartTotals()
        checkpoints = InMemoryCheckpointRepository(enable_tracing=False)
        manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
        subscription = await manager.subscribe(
            live, SubscriptionConfig(start_from="beginning"), name="live"
        )
        async with manager:
            await seed(store, 200, seed_value=99)
            for _ in range(3000):  # up to a minute
                if subscription.state is SubscriptionState.LIVE and not (
                    await store.committed_lag(manager.get_cursor("live"))
                ):
                    break
                await asyncio.sleep(0.02)
        return live.carts


def test_projections_rebuild_equals_the_live_subscription_and_reset_moves_it(
    tmp_path: Path,
) -> None:
    asyncio.run(_seeded(tmp_path / "a.db", 3000))
    live = asyncio.run(_live_totals(tmp_path / "a.db"))
    url = _sqlite_url(tmp_path / "a.db")
    declined = invoke(url, "--app", APP, "projections", "rebuild", "CartTotals", input="n\n")
    assert declined.exit_code == 1
    assert "Will reset CartTotals (no checkpoint" in declined.stderr
    ok(url, "--app", APP, "projections", "rebuild", "CartTotals", "--yes")
    assert REBUILT.carts == live
    status = json.loads(ok(url, "--json", "subscriptions", "status", "CartTotals").stdout)
    assert status["lag_events"] == 0
    ok(url, "projections", "reset", "CartTotals", "--to", "5", "--yes")
    status = json.loads(ok(url, "--json", "subscriptions", "status", "CartTotals").stdout)
    assert status["position"] == 5
    assert status["lag_events"] > 0
    with sqlite3.connect(tmp_path / "a.db") as raw:  # a gap, as PostgreSQL may leave one
        raw.execute("DELETE FROM events WHERE id = 7")
    ok(url, "projections", "reset", "CartTotals", "--to", "7", "--yes")
    status = json.loads(ok(url, "--json", "subscriptions", "status", "CartTotals").stdout)
    assert status["position"] == 6
    ok(url, "projections", "reset", "CartTotals", "--to-start", "--yes")
    assert fails(url, "subscriptions", "status", "CartTotals", code=3)


def test_projection_commands_refuse_bad_requests(tmp_path: Path) -> None:
    asyncio.run(_seeded(tmp_path / "a.db", 20))
    url = _sqlite_url(tmp_path / "a.db")
    assert "needs the projection 'Nope'" in fails(
        url, "--app", APP, "projections", "rebuild", "Nope", "--yes", code=2
    )
    assert "not both" in fails(url, "projections", "reset", "X", "--to-start", "--to", "3",
                               code=2)
    assert "no checkpoint named 'X'" in fails(url, "projections", "reset", "X", "--to-start",
                                              code=3)
    ok(url, "--app", APP, "projections", "rebuild", "CartTotals", "--yes")
    assert "position 99999 is past the last event" in fails(
        url, "projections", "reset", "CartTotals", "--to", "99999", "--yes", code=3
    )


@pytest.mark.postgresql
def test_copy_from_postgresql_into_sqlite(
    tmp_path: Path, pg_session_factory: Any, pg_url: str, pg_schema: str
) -> None:
    store_url = f"{pg_url}?schema={pg_schema}"

    async def fill() -> None:
        store = fresh_pg_store(pg_session_factory)
        try:
            await seed(store, 150)
        finally:
            await store.close()

    asyncio.run(fill())
    ok(store_url, "--app", APP, "copy", "--to", _sqlite_url(tmp_path / "b.db"), "--yes")
    assert asyncio.run(_types(tmp_path / "b.db")) == asyncio.run(_target_types(store_url))


@pytest.mark.postgresql
def test_projections_rebuild_on_postgresql(
    pg_session_factory: Any, pg_url: str, pg_schema: str
) -> None:
    url = f"{pg_url}?schema={pg_schema}"
    ok(url, "db", "init", "--yes")

    async def fill() -> dict[Any, tuple[int, int]]:
        store = fresh_pg_store(pg_session_factory)
        try:
            await seed(store, 500)
            expected = CartTotals()
            for stored in (await store.read_all()).events:
                await expected.handle(stored.event)
            return expected.carts
        finally:
            await store.close()

    expected = asyncio.run(fill())
    ok(url, "--app", APP, "projections", "rebuild", "CartTotals", "--yes")
    assert REBUILT.carts == expected
    status = json.loads(ok(url, "--json", "subscriptions", "status", "CartTotals").stdout)
    assert status["lag_events"] == 0
