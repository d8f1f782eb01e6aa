"""`streams show` says a stream's retention state and rule, shows an archived stream's
events (an operator sees them), and a soft-deleted stream is reported, not "not found"."""

from __future__ import annotations

from cli_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    ORDER_1,
    demo_url_fixture,
    invoke,
    ok_json,
    store_url_fixture,
)
from stream_states import change_state


def test_an_archived_stream_shows_its_state_and_its_events(demo_url: str) -> None:
    change_state(demo_url, ORDER_1, "Order", "archive")
    shown = ok_json(demo_url, "streams", "show", f"{ORDER_1}:Order")
    assert [r["state"] for r in shown["retention"]] == ["archived"]
    assert shown["events"], "an operator sees an archived stream's events"
    result = invoke(demo_url, "streams", "show", f"{ORDER_1}:Order")
    assert "retention (Order): archived" in result.stderr


def test_a_soft_deleted_stream_is_reported_with_its_state(demo_url: str) -> None:
    change_state(demo_url, ACCOUNT_1, "Account", "soft_delete")
    shown = ok_json(demo_url, "streams", "show", f"{ACCOUNT_1}:Account")
    assert shown["events"] == []
    [state] = shown["retention"]
    assert (state["aggregate_type"], state["state"]) == ("Account", "soft_deleted")
    result = invoke(demo_url, "streams", "show", f"{ACCOUNT_1}:Account")
    assert result.exit_code == 0
    assert "retention (Account): soft_deleted;" in result.stderr
    assert "its events are hidden from reads" in result.stderr


def test_a_live_stream_has_no_retention_row(demo_url: str) -> None:
    assert ok_json(demo_url, "streams", "show", f"{ACCOUNT_1}:Account")["retention"] == []
