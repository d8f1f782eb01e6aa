"""Every page and `/api/` route of the web app, on a demo store in a real SQLite file and in
PostgreSQL (Starlette's TestClient; the browser tests are in tests/browser/)."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

import pytest
from web_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    HTTPX_WARNING,
    Note,
    append_notes,
    client,
    demo_url_fixture,
    store_url_fixture,
)

from eventsource.cli.demo import app as demo_app

pytestmark = HTTPX_WARNING

ACCOUNT_STREAM = f"{ACCOUNT_1}:Account"


def _events(text: str) -> list[dict[str, Any]]:
    """The `data:` documents of a server-sent-events body."""
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_dashboard_counts_the_demo_store(demo_url: str) -> None:
    with client(demo_url) as web:
        data = web.get("/api/dashboard").json()
        page = web.get("/").text
    assert data["head_position"] == 11
    assert data["events"] == {"count": 11, "more": False}
    assert data["streams"] == {"count": 5, "more": False}
    assert [e["global_position"] for e in data["newest_events"]] == list(range(11, 1, -1))[:10]
    [checkpoint] = data["subscriptions"]
    assert (checkpoint["name"], checkpoint["lag_events"]) == ("AccountBalances", 4)
    assert data["dlq"]["total_failed"] == 1
    assert (data["outbox"]["pending_count"], data["outbox"]["failed_count"]) == (1, 1)
    assert "AccountBalances" in page
    assert "1 pending, 1 failed" in page


def test_streams_search_by_prefix_and_type_and_keyset_paging(demo_url: str) -> None:
    with client(demo_url) as web:
        accounts = web.get("/api/streams", params={"prefix": "a1"}).json()
        orders = web.get("/api/streams", params={"type": "Order"}).json()
        pages, cursor = [], None
        while True:
            page = web.get("/api/streams", params={"limit": 2, "cursor": cursor or ""}).json()
            pages.append([s["stream_id"] for s in page["streams"]])
            cursor = page["next"]
            if cursor is None:
                break
        html = web.get("/streams", params={"prefix": "a1000000", "limit": 2}).text
    assert [s["aggregate_type"] for s in accounts["streams"]] == ["Account"] * 3
    assert len(orders["streams"]) == 2
    assert all(s["stream_id"].endswith(":Order") for s in orders["streams"])
    assert [len(page) for page in pages] == [2, 2, 1]
    every = [each for page in pages for each in page]
    assert len(set(every)) == 5
    assert every == sorted(every)  # aggregate-id order, across pages
    assert ACCOUNT_STREAM in html
    next_link = re.search(r'rel="next" href="([^"]+)"', html)
    assert next_link is not None  # two of three accounts shown: a link to the next page


def test_stream_detail_shows_events_metadata_and_snapshot(demo_url: str) -> None:
    with client(demo_url) as web:
        data = web.get(f"/api/streams/{ACCOUNT_STREAM}").json()
        paged = web.get(f"/api/streams/{ACCOUNT_STREAM}", params={"limit": 3}).json()
        rest = web.get(f"/api/streams/{ACCOUNT_STREAM}", params={"cursor": paged["next"]}).json()
        html = web.get(f"/streams/{ACCOUNT_STREAM}").text
    assert [e["stream_position"] for e in data["events"]] == [1, 2, 3, 4]
    assert data["events"][0]["event_type"] == "AccountOpened"
    assert data["snapshot"]["version"] == 2
    assert data["snapshot"]["state"] == {"owner": "Ada", "balance": 100.0}
    assert [e["stream_position"] for e in paged["events"] + rest["events"]] == [1, 2, 3, 4]
    assert rest["next"] is None
    assert "AccountOpened" in html
    assert "Snapshot" in html
    assert "Metadata" in html


def test_global_log_pages_backwards_and_tails_live(demo_url: str) -> None:
    with client(demo_url) as web:
        first = web.get("/api/log", params={"limit": 4}).json()
        second = web.get("/api/log", params={"limit": 4, "cursor": first["next"]}).json()
        html = web.get("/log").text
        append_notes(demo_url, ["one", "two"])
        tail = web.get("/api/log/tail", params={"after": 9, "until": 13})
    assert [e["global_position"] for e in first["events"]] == [11, 10, 9, 8]
    assert [e["global_position"] for e in second["events"]] == [7, 6, 5, 4]
    assert 'id="log-rows"' in html
    assert "/api/log/tail?after=11" in html
    assert tail.headers["content-type"].startswith("text/event-stream")
    streamed = _events(tail.text)
    assert [e["global_position"] for e in streamed] == [10, 11, 12, 13]
    assert [e["data"].get("text") for e in streamed[2:]] == ["one", "two"]


def test_event_detail_shows_the_stored_type_and_version(demo_url: str) -> None:
    with client(demo_url) as web:
        data = web.get("/api/events/2").json()
        html = web.get("/events/2").text
    assert (data["stored_type"], data["stored_event_version"]) == ("MoneyDeposited", 1)
    assert data["stream_id"] == ACCOUNT_STREAM
    assert data["known"] is False  # no --app: shown as stored
    assert '<td id="stored-type">MoneyDeposited</td>' in html


def test_subscriptions_and_dead_letters(demo_url: str) -> None:
    with client(demo_url) as web:
        subscriptions = web.get("/api/subscriptions").json()
        failed = web.get("/api/dlq").json()
        resolved = web.get("/api/dlq", params={"status": "resolved"}).json()
        entry = web.get("/api/dlq/1").json()
        pages = [web.get(path).text for path in ("/subscriptions", "/dlq", "/dlq/1")]
    [checkpoint] = subscriptions["subscriptions"]
    assert (checkpoint["position"], checkpoint["state"]) == (7, "behind")
    assert [e["id"] for e in failed["entries"]] == [1]
    assert resolved["entries"] == []
    assert entry["event_data"]["event_type"] == "MoneyWithdrawn"
    assert "refuse_overdraft" in entry["error_stacktrace"]
    assert "behind" in pages[0]
    assert "MoneyWithdrawn" in pages[1]
    assert "Stack trace" in pages[2]
    assert 'id="retry"' not in pages[2]


def test_a_script_payload_renders_as_text(demo_url: str) -> None:
    attack = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
    stream = append_notes(demo_url, [attack])
    with client(demo_url) as web:
        pages = [
            web.get(path).text
            for path in ("/", "/log", f"/streams/{stream}:Note", "/events/12")
        ]
        api = web.get("/api/events/12").json()
    assert api["data"]["text"] == attack  # the API returns the data as stored
    for page in pages:
        assert "<script>document.title" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;document.title" in page


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/streams?cursor=not-a-cursor", 400, "not a cursor"),
        ("/api/streams?prefix=xyz", 400, "hex digits"),
        ("/api/streams?limit=0", 400, "limit"),
        ("/api/log?cursor=WyJzdHJlYW1zIiwxXQ", 400, "not a log one"),
        ("/api/streams/not-a-stream", 400, "is not a stream id"),
        (f"/api/streams/{ACCOUNT_1[:-1]}f:Account", 404, "not found"),
        ("/api/events/999", 404, "no event at global position 999"),
        ("/api/dlq/9", 404, "no dead letter with id 9"),
        ("/api/dlq?status=odd", 400, "use one of"),
        ("/api/log/tail?after=x", 400, "a global position"),
    ],
)
def test_bad_input_is_a_clear_error(demo_url: str, path: str, status: int, words: str) -> None:
    with client(demo_url) as web:
        response = web.get(path)
        page = web.get(path.removeprefix("/api"))
    assert response.status_code == status
    assert words in response.json()["error"]
    if "tail" not in path:
        assert page.status_code == status
        assert words in page.text
        assert "Traceback" not in page.text


def test_writes_are_refused_without_allow_writes(demo_url: str) -> None:
    with client(demo_url, app=demo_app()) as web:
        token = web.get("/api/csrf").json()
        confirm = web.get("/dlq/1/retry")
        posted = web.post("/api/dlq/1/retry", headers={"X-CSRF-Token": token["csrf_token"]})
        form = web.post("/dlq/1/resolve", data={"csrf_token": token["csrf_token"]})
        reset = web.post("/api/subscriptions/AccountBalances/reset")
        still = web.get("/api/dlq/1").json()
    assert token["writes"] is False
    assert [confirm.status_code, posted.status_code, form.status_code] == [403, 403, 403]
    assert reset.status_code == 403
    assert "--allow-writes" in posted.json()["error"]
    assert still["status"] == "failed"


def test_dlq_retry_with_allow_writes_needs_csrf_and_confirmation(demo_url: str) -> None:
    with client(demo_url, app=demo_app(), allow_writes=True) as web:
        assert 'id="retry"' in web.get("/dlq/1").text
        confirm = web.get("/dlq/1/retry")
        assert "Hand dead letter 1" in confirm.text
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', confirm.text)
        assert token is not None
        forged = web.post("/dlq/1/retry", data={"csrf_token": "0" * 64, "expect": "failed"})
        assert forged.status_code == 403
        done = web.post("/dlq/1/retry", data={"csrf_token": token[1], "expect": "failed"})
        again = web.post("/dlq/1/retry", data={"csrf_token": token[1], "expect": "failed"})
        entry = web.get("/api/dlq/1").json()
    assert done.status_code == 200
    assert '"resolved": [\n    1\n  ]' in done.text.replace("&#34;", '"')
    assert again.status_code == 409  # resolved meanwhile: nothing done twice
    assert (entry["status"], entry["resolved_by"]) == ("resolved", "eventsource-web")


def test_resolve_and_reset_through_the_api(demo_url: str) -> None:
    with client(demo_url, allow_writes=True) as web:
        token = web.get("/api/csrf").json()["csrf_token"]
        headers = {"X-CSRF-Token": token}
        assert web.post("/api/dlq/1/resolve").status_code == 403  # no token
        retry = web.post("/api/dlq/1/retry", headers=headers)
        assert retry.status_code == 400  # no --app: the projection is unknown
        assert "needs the projection AccountBalances" in retry.json()["error"]
        resolved = web.post("/api/dlq/1/resolve", headers=headers).json()
        reset = web.post("/api/subscriptions/AccountBalances/reset", headers=headers).json()
        unknown = web.post("/api/subscriptions/Nope/reset", headers=headers)
        no_such = web.post("/api/dlq/1/explode", headers=headers)
        checkpoints = web.get("/api/subscriptions").json()["subscriptions"]
    assert resolved == {"resolved": [1]}
    assert reset == {"reset": "AccountBalances"}
    assert unknown.status_code == 404
    assert no_such.status_code == 404
    assert checkpoints == []  # gone: the projection starts from the beginning


async def _read_own_store(store: Any) -> dict[str, Any]:
    """Append a note through `store`, then read its stream through `create_app(store)`,
    in this event loop (where the caller's store lives)."""
    import httpx

    from eventsource.web import create_app

    await store.initialize()
    note = Note(aggregate_id=ACCOUNT_1, aggregate_version=1, text="mine")
    await store.append_events(note.aggregate_id, "Note", [note], 0)
    web_app = create_app(store)
    transport = httpx.ASGITransport(app=web_app)
    async with (
        web_app.router.lifespan_context(web_app),
        httpx.AsyncClient(transport=transport, base_url="http://web") as web,
    ):
        found: dict[str, Any] = (await web.get(f"/api/streams/{ACCOUNT_1}:Note")).json()
        return found


def _registry() -> Any:
    from eventsource.events.registry import EventRegistry

    registry = EventRegistry()
    registry.register(Note)
    return registry


async def test_create_app_over_an_open_sqlite_store(tmp_path: Any) -> None:
    """`create_app(store)`: a store the caller opened (and closes) is read as it is."""
    from eventsource.stores.sqlite import SQLiteEventStore

    path = str(tmp_path / "own.db")
    async with SQLiteEventStore(path, event_registry=_registry()) as store:
        data = await _read_own_store(store)
    assert [e["data"]["text"] for e in data["events"]] == ["mine"]


@pytest.mark.postgresql
async def test_create_app_over_an_open_postgresql_store(pg_session_factory: Any) -> None:
    from eventsource.stores.postgresql import PostgreSQLEventStore

    store = PostgreSQLEventStore(pg_session_factory, event_registry=_registry())
    try:
        data = await _read_own_store(store)
    finally:
        await store.close()
    assert [e["data"]["text"] for e in data["events"]] == ["mine"]


def test_mounted_under_a_prefix_its_links_follow(demo_url: str) -> None:
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from eventsource.web import create_app

    admin = create_app(demo_url)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        async with admin.router.lifespan_context(admin):
            yield

    site = Starlette(routes=[Mount("/admin/events", app=admin)], lifespan=lifespan)
    with TestClient(site) as web:
        page = web.get("/admin/events/log").text
        assert web.get("/admin/events/static/app.js").status_code == 200
    assert 'href="/admin/events/streams"' in page
    assert 'data-tail="/admin/events/api/log/tail?after=11"' in page
    assert 'href="/admin/events/events/11"' in page


def test_dashboard_counts_stop_at_their_cap(demo_url: str, monkeypatch: Any) -> None:
    from eventsource.web import _data

    monkeypatch.setattr(_data, "COUNT_CAP", 5)
    monkeypatch.setattr(_data, "STREAM_COUNT_CAP", 3)
    with client(demo_url) as web:
        data = web.get("/api/dashboard").json()
        page = web.get("/").text
    assert data["events"] == {"count": 5, "more": True}
    assert data["streams"] == {"count": 3, "more": True}
    assert data["head_position"] == 11
    assert '<p class="big">5+</p>' in page
    assert '<p class="big">3+</p>' in page


def test_a_tenants_app_shows_only_that_tenants_data(demo_url: str) -> None:
    from eventsource.cli._errors import NotFoundError

    tenant = UUID("7e000000-0000-4000-8000-000000000001")
    stream = append_notes(demo_url, ["theirs", "also theirs"], tenant=tenant)
    with client(demo_url, tenant=tenant) as web:
        streams = web.get("/api/streams").json()["streams"]
        log = web.get("/api/log").json()["events"]
        dashboard = web.get("/api/dashboard").json()
        other = web.get(f"/api/streams/{ACCOUNT_STREAM}")
        page = web.get("/").text
    assert [s["stream_id"] for s in streams] == [f"{stream}:Note"]
    assert [e["data"]["text"] for e in log] == ["also theirs", "theirs"]
    assert (dashboard["events"]["count"], dashboard["streams"]["count"]) == (2, 1)
    assert other.status_code == 404
    assert f"tenant {tenant}" in page
    unknown = UUID("7e000000-0000-4000-8000-000000000009")
    with (
        pytest.raises(NotFoundError, match=f"tenant {unknown} has no events"),
        client(demo_url, tenant=unknown),
    ):
        pass
