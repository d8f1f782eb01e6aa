"""The web stream page and the dashboard show retention states (SQLite and PostgreSQL)."""

from __future__ import annotations

from operator_support import ORDER_1, change_state
from web_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    HTTPX_WARNING,
    client,
    demo_url_fixture,
    store_url_fixture,
)

pytestmark = HTTPX_WARNING


def test_stream_page_and_dashboard_show_retention_states(demo_url: str) -> None:
    change_state(demo_url, ACCOUNT_1, "Account", "soft_delete")
    change_state(demo_url, ORDER_1, "Order", "archive")
    with client(demo_url) as web:
        deleted = web.get(f"/api/streams/{ACCOUNT_1}:Account").json()
        archived = web.get(f"/api/streams/{ORDER_1}:Order").json()
        page = web.get(f"/streams/{ACCOUNT_1}:Account").text
        dashboard = web.get("/api/dashboard").json()
        home = web.get("/").text
    assert deleted["events"] == []
    assert [r["state"] for r in deleted["retention"]] == ["soft_deleted"]
    assert [r["state"] for r in archived["retention"]] == ["archived"]
    assert archived["events"], "an operator sees an archived stream's events"
    assert "<strong>soft-deleted</strong>" in page
    assert dashboard["retention"] == {"archived": 1, "soft_deleted": 1}
    assert "1 archived, 1 soft-deleted" in home


def test_a_live_store_says_every_stream_is_live(demo_url: str) -> None:
    with client(demo_url) as web:
        assert web.get("/api/dashboard").json()["retention"] == {}
        assert web.get(f"/api/streams/{ACCOUNT_1}:Account").json()["retention"] == []
        assert "every stream live" in web.get("/").text
