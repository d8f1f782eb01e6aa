"""The web stream page and the dashboard show retention states (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from operator_support import ORDER_1, change_state
from web_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    HTTPX_WARNING,
    append_notes,
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
    assert dashboard["retention"] == {
        "counts": {"archived": 1, "soft_deleted": 1}, "more": False
    }
    assert "1 archived, 1 soft-deleted" in home


def test_a_live_store_says_every_stream_is_live(demo_url: str) -> None:
    with client(demo_url) as web:
        assert web.get("/api/dashboard").json()["retention"] == {"counts": {}, "more": False}
        assert web.get(f"/api/streams/{ACCOUNT_1}:Account").json()["retention"] == []
        assert "every stream live" in web.get("/").text


def test_the_state_count_stops_at_its_cap(demo_url: str, monkeypatch: Any) -> None:
    from eventsource.web import _data

    change_state(demo_url, ACCOUNT_1, "Account", "soft_delete")
    change_state(demo_url, ORDER_1, "Order", "archive")
    monkeypatch.setattr(_data, "STREAM_COUNT_CAP", 1)
    with client(demo_url) as web:
        retention = web.get("/api/dashboard").json()["retention"]
        home = web.get("/").text
    assert retention["more"] is True
    assert sum(retention["counts"].values()) == 2  # the cap's one, plus the one that says "more"
    assert "and more: counted up to a cap" in home


def test_a_tenant_sees_only_its_own_streams_states(demo_url: str) -> None:
    tenant = UUID("7e000000-0000-4000-8000-000000000001")
    theirs = append_notes(demo_url, ["theirs"], tenant=tenant)
    change_state(demo_url, str(theirs), "Note", "archive")
    change_state(demo_url, ORDER_1, "Order", "archive")  # another tenant's (none) stream
    with client(demo_url, tenant=tenant) as web:
        own = web.get(f"/api/streams/{theirs}:Note").json()
        other = web.get(f"/api/streams/{ORDER_1}:Order")
        dashboard = web.get("/api/dashboard").json()
    assert [r["state"] for r in own["retention"]] == ["archived"]
    assert other.status_code == 404  # its state is not shown to this tenant
    assert dashboard["retention"] is None  # the counts cannot be narrowed to a tenant
