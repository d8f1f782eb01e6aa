"""The web event page and its API show a row as stored and, when upcasters or an old name
apply, as the app's code reads it now (SQLite file and PostgreSQL, rows inserted by raw SQL)."""

from __future__ import annotations

from operator_support import app, insert_row, ok
from web_support import (  # noqa: F401 - fixtures
    HTTPX_WARNING,
    client,
    store_url_fixture,
)

pytestmark = HTTPX_WARNING


def _seed(url: str) -> None:
    ok(url, "db", "init", "--yes")
    insert_row(url, "ParcelMeasured", 1, {"weight_kg": 1.25}, 1)  # position 1: two steps
    insert_row(url, "ParcelWeighed", 3, {"grams": 10, "unit": "kg"}, 2)  # as the code writes
    insert_row(url, "ParcelLabelled", 1, {"label": "fragile"}, 3)  # no upcaster path
    insert_row(url, "ParcelPacked", 1, {"grams": 3, "label": "x"}, 4)  # split in two


def test_a_v1_row_under_an_old_name_shows_both_shapes(store_url: str) -> None:
    _seed(store_url)
    with client(store_url, app=app()) as web:
        data = web.get("/api/events/1").json()
        html = web.get("/events/1").text
    assert (data["stored_type"], data["stored_event_version"]) == ("ParcelMeasured", 1)
    assert data["stored_payload"]["weight_kg"] == 1.25
    assert "grams" not in data["stored_payload"]
    current = data["current"]
    assert current["status"] == "upcast"
    assert current["class"] == "evolved_app.ParcelWeighed"
    assert (current["current_type"], current["current_version"]) == ("ParcelWeighed", 3)
    assert len(current["upcasters"]) == 2
    assert current["error"] is None
    [shown] = current["events"]
    assert (shown["event_type"], shown["event_version"]) == ("ParcelWeighed", 3)
    assert shown["data"] == {"grams": 1250, "unit": "g"}
    # the store's own read (the page's header) uses the app's upcasters too
    assert (data["event_type"], data["event_version"], data["known"]) == ("ParcelWeighed", 3, True)
    assert 'id="evolution"' in html
    assert "&#34;weight_kg&#34;: 1.25" in html or '"weight_kg": 1.25' in html
    assert '<td id="current-version">3</td>' in html


def test_a_current_row_has_no_second_shape(store_url: str) -> None:
    _seed(store_url)
    with client(store_url, app=app()) as web:
        data = web.get("/api/events/2").json()
        html = web.get("/events/2").text
    assert data["current"] is None
    assert data["stored_payload"]["unit"] == "kg"
    assert data["data"] == {"grams": 10, "unit": "kg"}
    assert 'id="evolution"' not in html


def test_a_row_with_no_upcaster_path_shows_why_it_cannot_be_read(store_url: str) -> None:
    _seed(store_url)
    with client(store_url, app=app()) as web:
        response = web.get("/api/events/3")
        html = web.get("/events/3")
    assert response.status_code == 200
    assert html.status_code == 200
    data = response.json()
    assert data["current"]["status"] == "no_path"
    assert data["current"]["events"] == []
    assert "ParcelLabelled" in data["current"]["error"]
    assert "carrier" in data["read_error"]  # the store cannot read it either
    assert data["stored_payload"]["label"] == "fragile"
    assert 'id="current-error"' in html.text


def test_without_the_app_rows_are_shown_as_stored(store_url: str) -> None:
    _seed(store_url)
    with client(store_url) as web:
        data = web.get("/api/events/1").json()
    assert data["current"] is None
    assert data["known"] is False
    assert data["data"] == {"weight_kg": 1.25}


def test_a_split_row_shows_each_event_it_becomes(store_url: str) -> None:
    _seed(store_url)
    with client(store_url, app=app()) as web:
        data = web.get("/api/events/4").json()
        html = web.get("/events/4").text
    current = data["current"]
    assert current["status"] == "split"
    assert [(e["event_type"], e["event_version"]) for e in current["events"]] == [
        ("ParcelWeighed", 3), ("ParcelLabelled", 2)
    ]
    assert current["events"][1]["data"] == {"label": "x", "carrier": "post"}
    assert html.count('class="payload current-payload"') == 2
