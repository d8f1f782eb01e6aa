"""Commit-safe reading: a tailing reader never skips a transaction that commits late."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID, uuid4

import pytest
from _pg_support import added, raw_connection, store

from eventsource.stores.interface import ReadOptions
from eventsource.stores.postgresql import PostgreSQLEventStore

pytestmark = pytest.mark.postgresql
__all__ = ["store"]

_INSERT = (
    "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version, "
    '"timestamp", payload) VALUES ($1, $2, \'PgCart\', \'PgItemAdded\', 1, now(), $3::jsonb) '
    "RETURNING id"
)


async def test_late_commit_at_a_lower_position_is_delivered_once(
    store: PostgreSQLEventStore, pg_url: str, pg_schema: str
) -> None:
    first = uuid4()
    await store.append_events(first, "PgCart", [added(first, 0)], 0)
    # Other sessions of the cluster may hold the horizon for a moment: read until it is past.
    seen, cursor = await _drain(store, None, want=1)
    assert len(seen) == 1
    naive_seen = await store.get_global_position()

    slow = await raw_connection(pg_url, pg_schema)  # connection 1: writer A, stays open
    try:
        a_stream = uuid4()
        a_event = added(a_stream, 1)
        transaction = slow.transaction()
        await transaction.start()
        a_position = await slow.fetchval(_INSERT, a_event.event_id, a_stream,
                                         a_event.model_dump_json())
        b_stream = uuid4()  # connection 2 (the store's pool): writer B commits at once
        b = await store.append_events(b_stream, "PgCart", [added(b_stream, 2)], 0)
        assert b.global_position > a_position

        # connection 3: the readers. The naive one moves past A's position; the safe one waits.
        naive = await _naive_tail(store, naive_seen)
        naive_seen = b.global_position
        page = await store.read_committed(cursor)
        assert page.events == []
        assert page.cursor == cursor
        assert await store.committed_lag(cursor) == 1  # B is committed but held back

        await transaction.commit()
    finally:
        await slow.close()

    naive += await _naive_tail(store, naive_seen)
    assert a_event.event_id not in naive  # the position-order tail skipped A for good

    delivered, cursor = await _drain(store, cursor, want=2, limit=1)
    b_id = (await store.get_events(b_stream, "PgCart")).events[0].event_id
    assert delivered == [a_event.event_id, b_id]  # both, once each, in commit-safe order
    assert await store.committed_lag(cursor) == 0


async def _drain(
    store: PostgreSQLEventStore, cursor: str | None, want: int, limit: int = 100
) -> tuple[list[UUID], str | None]:
    """Read pages from `cursor` until `want` events came (or 15 s passed), then until empty."""
    got: list[UUID] = []
    async with asyncio.timeout(15):
        while True:
            page = await store.read_committed(cursor, limit=limit)
            got += [s.event_id for s in page.events]
            cursor = page.cursor
            if not page.events:
                if len(got) >= want:
                    return got, cursor
                await asyncio.sleep(0.02)


async def _naive_tail(store: PostgreSQLEventStore, last_seen: int) -> list[UUID]:
    page = await store.read_all(ReadOptions(from_position=last_seen))
    return [s.event_id for s in page.events]


async def test_cursor_validation(store: PostgreSQLEventStore) -> None:
    assert (await store.read_committed("")).events == []
    for bad in ("12", "x:1", "1:-1", "-1:0"):
        with pytest.raises(ValueError, match="cursor"):
            await store.read_committed(bad)
    with pytest.raises(ValueError, match="limit"):
        await store.read_committed(None, limit=0)


@pytest.mark.slow
async def test_eight_writers_and_a_tailing_reader(store: PostgreSQLEventStore) -> None:
    rng = random.Random(7)
    written: dict[UUID, list[UUID]] = {}
    writing = 8

    async def writer(index: int) -> None:
        nonlocal writing
        streams = [uuid4() for _ in range(3)]
        versions = dict.fromkeys(streams, 0)
        try:
            for _ in range(50):
                stream = rng.choice(streams)
                batch = [added(stream, index) for _ in range(rng.randint(1, 15))]
                await store.append_events(stream, "PgCart", batch, versions[stream])
                versions[stream] += len(batch)
                written.setdefault(stream, []).extend(e.event_id for e in batch)
        finally:
            writing -= 1

    delivered: list[tuple[UUID, UUID, int]] = []

    async def reader() -> None:
        cursor = None
        while True:
            done = writing == 0
            page = await store.read_committed(cursor, limit=rng.randint(20, 400))
            cursor = page.cursor
            delivered.extend((s.aggregate_id, s.event_id, s.stream_position) for s in page.events)
            if done and not page.events and await store.committed_lag(cursor) == 0:
                return
            if not page.events:
                await asyncio.sleep(0.001)

    await asyncio.gather(reader(), *(writer(i) for i in range(8)))

    total = sum(len(ids) for ids in written.values())
    assert total > 2000
    ids = [event_id for _, event_id, _ in delivered]
    assert len(ids) == len(set(ids))  # no duplicates
    assert set(ids) == {i for stream_ids in written.values() for i in stream_ids}  # none missed
    for stream, stream_ids in written.items():
        mine = [(eid, pos) for agg, eid, pos in delivered if agg == stream]
        assert [eid for eid, _ in mine] == stream_ids  # per stream, in version order
        assert [pos for _, pos in mine] == list(range(1, len(stream_ids) + 1))
