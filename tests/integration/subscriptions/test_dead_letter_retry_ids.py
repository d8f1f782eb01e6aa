"""`retry_dead_letters(dlq_ids=...)` re-handles exactly the named dead letters (a real SQLite
file): what `eventsource dlq retry ID` relies on."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.repositories.sqlite import SQLiteDLQRepository
from eventsource.stores.sqlite import SQLiteEventStore
from eventsource.subscriptions import retry_dead_letters


class Ping(DomainEvent):
    event_type: str = "Ping"
    aggregate_type: str = "Pinger"


async def test_only_the_named_entries_are_retried_in_the_order_given(tmp_path: Path) -> None:
    registry = EventRegistry()
    registry.register(Ping)
    handled: list[UUID] = []

    class Recorder:
        async def handle(self, event: DomainEvent) -> None:
            handled.append(event.event_id)

    async with SQLiteEventStore(str(tmp_path / "dlq.db")) as store:
        dlq = SQLiteDLQRepository(store)
        events = [Ping(aggregate_id=uuid4()) for _ in range(4)]
        for event in events:
            await dlq.add_failed_event(
                event.event_id, "P", "Ping", event.model_dump(mode="json"), ValueError("x")
            )
        ids = [entry.id for entry in reversed(await dlq.get_failed_events())]  # oldest first
        await dlq.mark_resolved(ids[3], "someone")  # not failed: never retried
        result = await retry_dead_letters(
            dlq, Recorder(), registry=registry, dlq_ids=[ids[2], ids[0], ids[3], 999]
        )
        assert result.resolved == [ids[2], ids[0]]
        assert handled == [events[2].event_id, events[0].event_id]
        still_failed = [entry.id for entry in await dlq.get_failed_events()]
        assert still_failed == [ids[1]]
        other = await retry_dead_letters(
            dlq, Recorder(), projection_name="Q", registry=registry, dlq_ids=[ids[1]]
        )
        assert other.resolved == []  # of another projection than the one named
