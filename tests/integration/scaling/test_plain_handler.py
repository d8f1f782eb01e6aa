"""A non-transactional (plain) handler: at least once, at most one page handed over again."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence

from scale_child import Tick
from scale_fixtures import backend_fixture, where_fixture  # noqa: F401 - fixtures
from sqlalchemy.ext.asyncio import AsyncEngine

from eventsource.scaling import PartitionedWorker
from eventsource.stores.interface import EventStore, StoredEvent

BATCH = 10


class FlakyAfterwards:
    """Records every event it is handed, and fails once after recording its second page (as a
    handler that did its work but died before the checkpoint moved)."""

    def __init__(self) -> None:
        self.seen: Counter[uuid.UUID] = Counter()
        self.calls = 0

    async def __call__(self, events: Sequence[StoredEvent]) -> None:
        self.calls += 1
        self.seen.update(s.event_id for s in events)
        if self.calls == 2:
            raise ConnectionError("the downstream service went away after taking the page")


async def test_a_plain_handler_gets_every_event_and_repeats_at_most_one_page(
    backend: tuple[EventStore, AsyncEngine],
) -> None:
    store, engine = backend
    ids = []
    for _ in range(8):
        stream = uuid.uuid4()
        events = [Tick(aggregate_id=stream, n=i + 1) for i in range(5)]
        await store.append_events(stream, "ScaleStream", events, 0)
        ids += [e.event_id for e in events]
    handler = FlakyAfterwards()
    worker = PartitionedWorker(store, engine, "plain", handler, partitions=1,
                               transactional=False, lease_ttl=2, heartbeat=0.5,
                               batch_size=BATCH)
    async with worker:
        async with asyncio.timeout(30):
            while worker.events_delivered < len(ids):  # noqa: ASYNC110 - polls the worker
                await asyncio.sleep(0.02)
    assert set(handler.seen) == set(ids)
    repeated = [event_id for event_id, times in handler.seen.items() if times > 1]
    assert len(repeated) == BATCH
    assert max(handler.seen.values()) == 2
    assert repeated == ids[BATCH:2 * BATCH]  # the page that failed, and nothing else
