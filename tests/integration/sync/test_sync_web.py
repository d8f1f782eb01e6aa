"""The synchronous API inside web requests: a Django view and a Flask route, driven by their
test clients, on a SQLite file; a stale save surfaces as `OptimisticLockError` in the view."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _sync_support import counter, portal

from eventsource import OptimisticLockError
from eventsource.sync import Portal, SyncAggregateRepository, SyncEventStore
from extras import import_extra

__all__ = ["portal"]  # fixtures, imported for pytest


import_extra("django")
import_extra("flask")

from django.conf import settings  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from flask import Flask  # noqa: E402

REPOS: dict[str, SyncAggregateRepository[Any]] = {}


@pytest.fixture
def repo(tmp_path: Path, portal: Portal) -> Iterator[SyncAggregateRepository[Any]]:
    store = SyncEventStore.sqlite(tmp_path / "web.db", portal=portal)
    REPOS["web"] = SyncAggregateRepository(store, counter, "SyncCounter")
    yield REPOS["web"]
    REPOS.clear()


def increment(counter_id: str, stale_from: int | None = None) -> dict[str, Any]:
    """The command both views run: load, increment, save. `stale_from` saves an aggregate
    loaded at that version instead, to make the save conflict."""
    repo = REPOS["web"]
    aggregate = repo.load_or_create(uuid.UUID(counter_id))
    if stale_from is not None:
        aggregate = repo.create_new(aggregate.aggregate_id)
        aggregate.load_from_history(
            repo.event_store.get_events(aggregate.aggregate_id, "SyncCounter").events[:stale_from]
        )
    aggregate.increment()
    try:
        repo.save(aggregate)
    except OptimisticLockError as exc:
        return {"status": 409, "expected": exc.expected_version, "actual": exc.actual_version}
    return {"status": 200, "version": aggregate.version}


def django_view(request: HttpRequest, counter_id: str) -> JsonResponse:
    stale = request.GET.get("stale")
    result = increment(counter_id, int(stale) if stale is not None else None)
    return JsonResponse(result, status=result["status"])


urlpatterns = [path("counters/<str:counter_id>/increment", django_view)]


def test_a_django_view_uses_the_sync_repository(repo: SyncAggregateRepository[Any]) -> None:
    if not settings.configured:
        settings.configure(
            DEBUG=True, SECRET_KEY="test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"],
            MIDDLEWARE=[], INSTALLED_APPS=[],
        )
        import django

        django.setup()
    from django.test import Client

    client = Client()
    counter_id = str(uuid.uuid4())
    first = client.post(f"/counters/{counter_id}/increment")
    second = client.post(f"/counters/{counter_id}/increment")
    assert (first.status_code, json.loads(first.content)) == (200, {"status": 200, "version": 1})
    assert json.loads(second.content)["version"] == 2
    stale = client.post(f"/counters/{counter_id}/increment?stale=1")
    assert stale.status_code == 409
    assert json.loads(stale.content) == {"status": 409, "expected": 1, "actual": 2}
    assert repo.get_version(uuid.UUID(counter_id)) == 2


def test_a_flask_route_uses_the_sync_repository(repo: SyncAggregateRepository[Any]) -> None:
    app = Flask(__name__)

    @app.post("/counters/<counter_id>/increment")
    def increment_route(counter_id: str) -> tuple[dict[str, Any], int]:
        from flask import request

        stale = request.args.get("stale")
        result = increment(counter_id, int(stale) if stale is not None else None)
        return result, result["status"]

    client = app.test_client()
    counter_id = str(uuid.uuid4())
    assert client.post(f"/counters/{counter_id}/increment").get_json() == {
        "status": 200, "version": 1
    }
    stale = client.post(f"/counters/{counter_id}/increment?stale=0")
    assert stale.status_code == 409
    assert stale.get_json() == {"status": 409, "expected": 0, "actual": 1}
    assert repo.get_version(uuid.UUID(counter_id)) == 1
