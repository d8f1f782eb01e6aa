"""In-memory outbox repository and JSON helpers (API.md §10)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from eventsource import DomainEvent, EventSourceJSONEncoder, InMemoryOutboxRepository
from eventsource.repositories import json_dumps, json_loads


class Shipped(DomainEvent):
    event_type: str = "Shipped"
    aggregate_type: str = "Order"
    amount: Decimal = Decimal("1.50")


async def test_outbox_lifecycle() -> None:
    repo = InMemoryOutboxRepository()
    tenant = uuid4()
    first = Shipped(aggregate_id=uuid4(), tenant_id=tenant)
    second = Shipped(aggregate_id=uuid4())
    id1 = await repo.add_event(first)
    id2 = await repo.add_event(second)
    pending = await repo.get_pending_events()
    assert [p.id for p in pending] == [id1, id2]
    assert pending[0].event_data["tenant_id"] == str(tenant)
    assert pending[0].event_data["payload"]["amount"] == "1.50"
    await repo.increment_retry(id2, "broker down")
    await repo.mark_published(id1)
    stats = await repo.get_stats()
    assert (stats.pending_count, stats.published_count, stats.failed_count) == (1, 1, 0)
    assert stats.avg_retries == 0.5
    await repo.mark_failed(id2, "gave up")
    assert await repo.get_pending_events() == []
    assert await repo.cleanup_published(days=0) == 1
    assert (await repo.get_stats()).published_count == 0


def test_json_helpers_write_uuids_and_datetimes_as_strings() -> None:
    uid = uuid4()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = json_dumps({"id": uid, "at": when, "amount": Decimal("2.5")})
    assert json_loads(text) == {"id": str(uid), "at": when.isoformat(), "amount": "2.5"}
    assert json.loads(json.dumps({"id": uid}, cls=EventSourceJSONEncoder)) == {"id": str(uid)}
