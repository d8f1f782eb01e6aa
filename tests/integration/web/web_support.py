"""The web app under test: Starlette's TestClient on a demo store (a real SQLite file or a
fresh PostgreSQL schema, the command line's fixtures), and appending events to that store
from outside the app, as another process would."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from cli_support import (
    ACCOUNT_1,
    DEMO_APP,
    console_script,
    demo_url_fixture,
    fails,
    store_url_fixture,
)

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli._runner import run
from eventsource.events.base import DomainEvent

__all__ = [
    "ACCOUNT_1",
    "DEMO_APP",
    "HTTPX_WARNING",
    "Note",
    "append_notes",
    "client",
    "console_script",
    "demo_url_fixture",
    "fails",
    "store_url_fixture",
]

# Starlette's TestClient warns that it would rather have httpx2; the client works the same.
HTTPX_WARNING = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class Note(DomainEvent):
    """A free-text event, to put any text (markup too) into a store."""

    event_type: str = "Note"
    aggregate_type: str = "Note"
    text: str


@contextmanager
def client(url: str, **options: Any) -> Iterator[Any]:
    """A TestClient of `create_app(url, **options)`, its lifespan run (the store open)."""
    from starlette.testclient import TestClient

    from eventsource.web import create_app

    with TestClient(create_app(url, **options)) as opened:
        yield opened


def append_notes(
    url: str, texts: list[str], aggregate_id: UUID | None = None, tenant: UUID | None = None
) -> UUID:
    """Append a `Note` per text to one stream (of `tenant`), through the store's API; the
    stream's id."""
    stream = aggregate_id or uuid4()

    async def go() -> None:
        db = await Backend.open(parse_url(url), BrowsingRegistry(None), create=False)
        try:
            version = await db.store.get_stream_version(stream, "Note")
            notes = [
                Note(
                    aggregate_id=stream, aggregate_version=version + number, text=text,
                    tenant_id=tenant,
                )
                for number, text in enumerate(texts, start=1)
            ]
            await db.store.append_events(stream, "Note", notes, version)
        finally:
            await db.close()

    run(go())
    return stream
