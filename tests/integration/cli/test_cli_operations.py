"""`eventsource subscriptions | dlq | outbox | snapshots` on a store seeded by `demo`."""

from __future__ import annotations

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


def test_subscriptions_list_and_status_show_the_lag(demo_url: str) -> None:
    [item] = ok_json(demo_url, "subscriptions", "list")["subscriptions"]
    assert (item["name"], item["position"], item["lag_events"], item["state"]) == (
        "AccountBalances", 7, 4, "behind"
    )
    assert item["lag_seconds"] >= 0.0
    status = ok_json(demo_url, "subscriptions", "status", "AccountBalances")
    assert status["lag_events"] == 4
    assert "AccountBalances" in ok(demo_url, "subscriptions", "list").stdout
    ok(demo_url, "subscriptions", "status", "AccountBalances", "--max-lag-events", "4")
    line = fails(
        demo_url, "subscriptions", "status", "AccountBalances", "--max-lag-events", "3", code=1
    )
    assert "4 events behind (limit 3)" in line
    assert "no checkpoint named 'Nope'" in fails(
        demo_url, "subscriptions", "status", "Nope", code=3
    )


def test_dlq_list_show_and_resolve(demo_url: str) -> None:
    listed = ok_json(demo_url, "dlq", "list")
    [entry] = listed["entries"]
    assert (entry["id"], entry["projection_name"], entry["event_type"], entry["status"]) == (
        1, "AccountBalances", "MoneyWithdrawn", "failed"
    )
    assert listed["stats"]["total_failed"] == 1
    detail = ok_json(demo_url, "dlq", "show", "1")
    assert detail["event_data"]["amount"] == 500.0
    assert "balance would go below zero" in detail["error_message"]
    assert "stack trace" in ok(demo_url, "dlq", "show", "1").stdout
    assert "no dead letter with id 9" in fails(demo_url, "dlq", "show", "9", code=3)

    declined = invoke(demo_url, "dlq", "resolve", "1", input="n\n")
    assert declined.exit_code == 1
    assert "Will mark dead letter 1" in declined.stderr
    assert ok_json(demo_url, "dlq", "show", "1")["status"] == "failed"
    ok(demo_url, "dlq", "resolve", "1", "--by", "ops", input="y\n")
    resolved = ok_json(demo_url, "dlq", "show", "1")
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "ops")
    assert "already resolved" in fails(demo_url, "dlq", "resolve", "1", "--yes", code=4)
    assert ok_json(demo_url, "dlq", "list")["entries"] == []


def test_dlq_retry_hands_the_event_to_the_apps_projection(demo_url: str) -> None:
    line = fails(demo_url, "dlq", "retry", "1", "--yes", code=2)
    assert "needs the projection(s) AccountBalances" in line
    assert "ids or --all" in fails(demo_url, "dlq", "retry", code=2)
    assert "no dead letter with id 7" in fails(
        demo_url, "--app", DEMO_APP, "dlq", "retry", "7", "--yes", code=3
    )
    outcome = ok_json(demo_url, "--app", DEMO_APP, "dlq", "retry", "1", "--yes")
    assert outcome == {"resolved": [1], "failed": [], "undecodable": []}
    assert ok_json(demo_url, "dlq", "show", "1")["status"] == "resolved"
    assert "is resolved, not failed" in fails(
        demo_url, "--app", DEMO_APP, "dlq", "retry", "1", "--yes", code=4
    )
    nothing = ok(demo_url, "--app", DEMO_APP, "dlq", "retry", "--all", "--yes")
    assert "nothing to retry" in nothing.stderr


def test_outbox_status_and_retry_failed(demo_url: str) -> None:
    status = ok_json(demo_url, "outbox", "status")
    stats = status["stats"]
    assert (stats["pending_count"], stats["failed_count"]) == (1, 1)
    [failed] = status["failed"]
    assert failed["last_error"] == "broker unreachable"
    assert "broker unreachable" in ok(demo_url, "outbox", "status").stdout
    assert "not a UUID" in fails(demo_url, "outbox", "retry-failed", "--id", "x", code=2)
    assert fails(demo_url, "outbox", "retry-failed", code=1, input="n\n")
    assert ok_json(demo_url, "outbox", "retry-failed", "--yes") == {"requeued": 1}
    after = ok_json(demo_url, "outbox", "status")["stats"]
    assert (after["pending_count"], after["failed_count"]) == (2, 0)
    assert "nothing to do" in ok(demo_url, "outbox", "retry-failed").stderr


def test_snapshots_list_and_invalidate(demo_url: str) -> None:
    page = ok_json(demo_url, "snapshots", "list")
    [snapshot] = page["snapshots"]
    assert (snapshot["stream_id"], snapshot["version"], snapshot["stream_version"]) == (
        f"{ACCOUNT_1}:Account", 2, 4
    )
    assert page["next"] is None
    assert ok_json(demo_url, "snapshots", "list", "--type", "Order")["snapshots"] == []
    none_below = ok(demo_url, "snapshots", "invalidate", "--aggregate-type", "Account",
                    "--schema-below", "1")
    assert "no Account snapshots" in none_below.stderr
    fails(demo_url, "snapshots", "invalidate", "--aggregate-type", "Account", code=1,
          input="n\n")
    assert len(ok_json(demo_url, "snapshots", "list")["snapshots"]) == 1
    deleted = ok_json(demo_url, "snapshots", "invalidate", "--aggregate-type", "Account", "-y")
    assert deleted == {"deleted": 1}
    assert ok_json(demo_url, "snapshots", "list")["snapshots"] == []


def test_demo_twice_seeds_once(demo_url: str) -> None:
    assert "already holds the demo sample" in ok(demo_url, "demo").stderr
    assert len(ok_json(demo_url, "streams", "list")["streams"]) == 5


def test_a_command_needing_a_table_the_store_lacks_says_what_to_run(store_url: str) -> None:
    ok(store_url, "db", "init", "--yes")
    assert "no dead letter with id 1" in fails(store_url, "dlq", "show", "1", code=3)
    ok(store_url, "db", "sql", "--backend", "sqlite")
    bare = store_url  # a store whose tables are not there
    if store_url.startswith("sqlite"):
        bare = store_url.replace("events.db", "bare.db")
        import sqlite3

        sqlite3.connect(bare.removeprefix("sqlite:///")).close()
    else:
        bare = store_url.rsplit("=", 1)[0] + "=public_missing_schema_x"
    line = fails(bare, "streams", "list", code=3)
    assert "has no events table" in line
    assert "db init" in line
