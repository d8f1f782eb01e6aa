"""Blue/green rebuild of a database projection (issue 17): the next version is built from the
first event beside the serving one, switched to atomically once caught up, the old dropped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from scale_child import Tick
from scale_fixtures import backend_fixture, where_fixture  # noqa: F401 - fixtures
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from eventsource.scaling import (
    BlueGreenRebuild,
    PartitionedWorker,
    RebuildProgress,
    active_version,
)
from eventsource.stores.interface import EventStore, StoredEvent


def totals(version: int) -> Any:
    """Version `version` of the read model: one row per stream with its event count."""

    async def handle(conn: Any, events: Sequence[StoredEvent]) -> None:
        await conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS totals_v{version} (stream TEXT PRIMARY KEY, n INT)"))
        await conn.execute(text(
            f"INSERT INTO totals_v{version} (stream, n) VALUES (:s, 1) "
            f"ON CONFLICT (stream) DO UPDATE SET n = totals_v{version}.n + 1"
        ), [{"s": str(s.aggregate_id)} for s in events])

    return handle


async def drop(conn: AsyncConnection, old: int) -> None:
    await conn.execute(text(f"DROP TABLE totals_v{old}"))


async def _append(store: EventStore, streams: int, per_stream: int) -> None:
    for _ in range(streams):
        stream = uuid.uuid4()
        await store.append_events(
            stream, "ScaleStream", [Tick(aggregate_id=stream, n=i) for i in range(per_stream)], 0
        )


async def _table(engine: AsyncEngine, version: int) -> list[int]:
    async with engine.connect() as conn:
        return sorted(n for (n,) in (await conn.execute(
            text(f"SELECT n FROM totals_v{version}"))).all())


async def test_rebuild_switches_when_caught_up_and_the_old_version_stops(
    backend: tuple[EventStore, AsyncEngine],
) -> None:
    store, engine = backend
    await _append(store, 12, 3)
    options: dict[str, Any] = {"lease_ttl": 2, "heartbeat": 0.5, "batch_size": 10}
    assert await active_version(engine, "totals") is None
    first = await BlueGreenRebuild(store, engine, "totals", 1, totals(1), partitions=4,
                                   poll=0.05, **options).run()
    assert first.switched
    assert await active_version(engine, "totals") == 1
    serving = PartitionedWorker(store, engine, "totals@v1", totals(1), partitions=4,
                                worker_id="old", **options)
    seen: list[RebuildProgress] = []
    async with serving:
        await _append(store, 4, 2)
        second = await BlueGreenRebuild(store, engine, "totals", 2, totals(2), partitions=8,
                                        drop=drop, on_progress=seen.append, poll=0.05,
                                        **options).run()
        assert await active_version(engine, "totals") == 2
        async with asyncio.timeout(30):  # its lease rows are gone: it holds nothing more
            while serving.owned:  # noqa: ASYNC110 - polls the worker
                await asyncio.sleep(0.02)
    assert second.switched
    assert seen[-1] == second
    assert seen[0].events_behind > 0
    assert [p.position for p in seen] == sorted(p.position for p in seen)
    assert await _table(engine, 2) == [2] * 4 + [3] * 12
    with pytest.raises(DBAPIError, match="totals_v1"):
        await _table(engine, 1)
