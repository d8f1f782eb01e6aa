"""`eventsource streams` and `events` on a store seeded by `eventsource demo`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from uuid import UUID

from cli_support import (  # noqa: F401 - fixtures
    ACCOUNT_1,
    DEMO_APP,
    ORDER_1,
    demo_url_fixture,
    fails,
    invoke,
    ok,
    ok_json,
    store_url_fixture,
)

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli.demo import REGISTRY, MoneyDeposited
from eventsource.events.registry import default_registry

GOLDEN = Path(__file__).parent / "golden" / "streams_show_account_1.json"
STREAMS = [
    f"{ORDER_1}:Order",
    "0d000000-0000-4000-8000-000000000002:Order",
    f"{ACCOUNT_1}:Account",
    "a1000000-0000-4000-8000-000000000002:Account",
    "a1000000-0000-4000-8000-000000000003:Account",
]


def _masked(document: dict[str, Any]) -> dict[str, Any]:
    """The document with each `stored_at` (the time the demo ran) replaced by a mark."""
    for event in document["events"]:
        assert event["stored_at"].startswith("20")
        event["stored_at"] = "<stored_at>"
    return document


def test_streams_show_json_is_the_golden_output(demo_url: str) -> None:
    shown = ok_json(demo_url, "--app", DEMO_APP, "streams", "show", f"{ACCOUNT_1}:Account")
    assert _masked(shown) == json.loads(GOLDEN.read_text())


def test_streams_show_without_the_classes_shows_the_same_data(demo_url: str) -> None:
    shown = _masked(ok_json(demo_url, "streams", "show", f"{ACCOUNT_1}:Account"))
    golden = json.loads(GOLDEN.read_text())
    assert all(event.pop("known") is False for event in shown["events"])
    assert all(event.pop("known") is True for event in golden["events"])
    assert shown == golden


def test_streams_show_from_version_limit_and_bare_id(demo_url: str) -> None:
    shown = ok_json(demo_url, "streams", "show", f"{ACCOUNT_1}:Account", "--from-version", "2")
    assert [e["stream_position"] for e in shown["events"]] == [3, 4]
    assert ok_json(demo_url, "streams", "show", ACCOUNT_1, "--limit", "1")["events"][0][
        "event_type"
    ] == "AccountOpened"
    past_end = ok_json(demo_url, "streams", "show", f"{ACCOUNT_1}:Account", "--from-version", "9")
    assert past_end["events"] == []  # the stream exists: an empty page, not "not found"
    text = ok(demo_url, "streams", "show", f"{ORDER_1}:Order").stdout.splitlines()
    assert text[0].startswith("#4  2024-01-01T09:04:00Z  0d000000")
    assert "OrderPlaced" in text[0]


def test_streams_show_of_a_missing_stream_exits_3_with_a_message(demo_url: str) -> None:
    missing = "a1000000-0000-4000-8000-0000000000ff:Account"
    result = invoke(demo_url, "streams", "show", missing)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: stream {missing} not found: it has no events in {demo_url}"
    )
    assert "not found" in fails(demo_url, "streams", "show", f"{ACCOUNT_1}:Order", code=3)
    assert "not a stream id" in fails(demo_url, "streams", "show", "nope", code=2)


def test_streams_list_pages_by_keyset(demo_url: str) -> None:
    first = ok_json(demo_url, "streams", "list", "--limit", "2")
    assert [s["stream_id"] for s in first["streams"]] == STREAMS[:2]
    assert first["next"] == STREAMS[1]
    seen = [s["stream_id"] for s in first["streams"]]
    cursor = first["next"]
    while cursor is not None:
        page = ok_json(demo_url, "streams", "list", "--limit", "2", "--after", cursor)
        seen += [s["stream_id"] for s in page["streams"]]
        cursor = page["next"]
    assert seen == STREAMS
    account = ok_json(demo_url, "streams", "list")["streams"][2]
    assert (account["version"], account["last_event_type"], account["last_position"]) == (
        4, "MoneyWithdrawn", 8
    )
    table = ok(demo_url, "streams", "list", "--limit", "2")
    assert STREAMS[0] in table.stdout
    assert f"--after {STREAMS[1]}" in table.stderr


def test_streams_list_filters_by_type_and_id_prefix(demo_url: str) -> None:
    accounts = ok_json(demo_url, "streams", "list", "--type", "Account")["streams"]
    assert [s["stream_id"] for s in accounts] == STREAMS[2:]
    orders = ok_json(demo_url, "streams", "list", "--prefix", "0D00")["streams"]
    assert [s["stream_id"] for s in orders] == STREAMS[:2]
    one = ok_json(demo_url, "streams", "list", "--prefix", "a1000000-0000-4000-8000-00000000000")
    assert len(one["streams"]) == 3
    assert ok_json(demo_url, "streams", "list", "--prefix", "ff")["streams"] == []
    assert "hex digits" in fails(demo_url, "streams", "list", "--prefix", "xyz", code=2)


def test_events_tail_reads_the_committed_log(demo_url: str) -> None:
    lines = ok(demo_url, "--json", "events", "tail", "--from", "8").stdout.splitlines()
    assert [json.loads(line)["global_position"] for line in lines] == [9, 10, 11]
    last = ok(demo_url, "--json", "events", "tail", "--last", "2").stdout.splitlines()
    assert [json.loads(line)["global_position"] for line in last] == [10, 11]
    typed = ok(demo_url, "--json", "events", "tail", "--from", "0", "--type", "OrderPlaced")
    assert [json.loads(line)["stream_id"] for line in typed.stdout.splitlines()] == [
        f"{ORDER_1}:Order", "0d000000-0000-4000-8000-000000000002:Order"
    ]
    text = ok(demo_url, "events", "tail", "--last", "1").stdout
    assert text.startswith("#11  ")
    assert "MoneyWithdrawn (unknown type)" in text


def test_events_types_counts_and_flags_unknown_types(demo_url: str) -> None:
    # As in a fresh `eventsource` process: no class registered but what --app imports (other
    # test modules register classes of these names in the default registry at import).
    default_registry.clear()  # restored after the test by conftest's autouse fixture
    unknown = ok_json(demo_url, "events", "types")["types"]
    assert [(t["event_type"], t["event_version"], t["count"], t["known"]) for t in unknown] == [
        ("AccountOpened", 1, 3, False),
        ("MoneyDeposited", 1, 3, False),
        ("MoneyWithdrawn", 1, 2, False),
        ("OrderPlaced", 1, 2, False),
        ("OrderShipped", 1, 1, False),
    ]
    assert "UNKNOWN" in ok(demo_url, "events", "types").stdout
    known = ok_json(demo_url, "--app", DEMO_APP, "events", "types")["types"]
    assert all(t["known"] for t in known)
    assert known[1]["class"] == "eventsource.cli.demo.MoneyDeposited"


def test_events_types_counts_each_stored_version(demo_url: str) -> None:
    """A type stored under two schema versions is counted per version."""

    async def append_v2() -> None:
        db = await Backend.open(parse_url(demo_url), BrowsingRegistry(REGISTRY), create=False)
        try:
            event = MoneyDeposited(
                aggregate_id=UUID(ACCOUNT_1), amount=1.0, event_version=2, aggregate_version=5
            )
            await db.store.append_events(event.aggregate_id, "Account", [event], 4)
        finally:
            await db.close()

    asyncio.run(append_v2())
    counts = {
        (t["event_type"], t["event_version"]): t["count"]
        for t in ok_json(demo_url, "events", "types")["types"]
    }
    assert counts[("MoneyDeposited", 1)] == 3
    assert counts[("MoneyDeposited", 2)] == 1
