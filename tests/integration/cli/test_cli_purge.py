"""`eventsource purge` on a real SQLite file: runs the retention purge job once."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from cli_support import ok, ok_json

from eventsource import DomainEvent
from eventsource.retention import RetentionRule, StreamRetention
from eventsource.stores.sqlite import SQLiteEventStore


class Logged(DomainEvent):
    event_type: str = "Logged"
    aggregate_type: str = "Log"


async def test_purge_deletes_what_rules_hide_and_respects_guards(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    kept, gone = uuid4(), uuid4()
    async with SQLiteEventStore(str(path)) as store:
        await store.initialize()
        store.event_registry.register(Logged)
        for stream in (kept, gone):
            await store.append_events(
                stream, "Log", [Logged(aggregate_id=stream) for _ in range(4)], 0
            )
        retention = StreamRetention(store)
        await retention.set_rule(kept, "Log", RetentionRule(max_count=1))
        await retention.tombstone(gone, "Log")
    url = f"sqlite:///{path}"
    guarded = ok_json(url, "purge", "--guarded", "audit", "--yes")  # audit has read nothing
    assert (guarded["events"], guarded["streams"]) == (0, 2)
    report = ok_json(url, "purge", "--yes")
    assert (report["events"], report["overdue"]) == (3 + 4, 0)
    assert "deleted 0 events" in ok(url, "purge", "--yes").stderr  # idempotent
