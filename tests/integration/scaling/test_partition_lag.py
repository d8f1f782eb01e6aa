"""Lag per subscription and partition, through the health API and OpenTelemetry gauges
(issue 17: events behind head, age of the oldest undelivered event, owner, epoch, heartbeat)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from scale_child import Audit, Tick
from scale_cluster import check_exact
from scale_fixtures import backend_fixture, where_fixture  # noqa: F401 - fixtures
from sqlalchemy.ext.asyncio import AsyncEngine

from eventsource.scaling import PartitionedWorker, partition_lag
from eventsource.scaling.lag import PARTITION_LAG, PARTITION_OLDEST_AGE
from eventsource.stores.interface import EventStore

Backend = tuple[EventStore, AsyncEngine]


async def _append(store: EventStore, streams: int, per_stream: int) -> dict[str, tuple[str, int]]:
    appended = {}
    for _ in range(streams):
        stream = uuid.uuid4()
        events = [Tick(aggregate_id=stream, n=i + 1) for i in range(per_stream)]
        await store.append_events(stream, "ScaleStream", events, 0)
        appended.update({str(e.event_id): (str(stream), i + 1) for i, e in enumerate(events)})
    return appended


async def test_lag_shows_the_backlog_then_the_owner_catching_up(
    backend: Backend, telemetry: Any
) -> None:
    store, engine = backend
    worker = PartitionedWorker(store, engine, "audit", Audit("w", 0, None, 0), partitions=4,
                               lease_ttl=2, heartbeat=0.2, batch_size=50, worker_id="w")
    await worker.leases.register(worker.handler_name)
    appended = await _append(store, 10, 8)
    await asyncio.sleep(0.01)
    before = await partition_lag(engine, store, "audit")
    assert [lag.partition for lag in before] == [0, 1, 2, 3]
    assert all(lag.events_behind == 80 and lag.owner is None for lag in before)
    assert all(lag.oldest_undelivered_age > 0 and lag.heartbeat_age is None for lag in before)
    async with worker:
        async with asyncio.timeout(30):
            while worker.events_delivered < 80:  # noqa: ASYNC110 - polls another process's state
                await asyncio.sleep(0.05)
        report = await worker.refresh_lag()
        health = worker.health()
        attributes = {"eventsource.subscription.name": "audit", "eventsource.partition": 0,
                      "eventsource.partition.owner": "w",
                      "eventsource.partition.epoch": report[0].epoch}
        assert telemetry.gauge(PARTITION_LAG, attributes) == 0
        assert telemetry.gauge(PARTITION_OLDEST_AGE, attributes) == 0
    assert [(lag.owner, lag.events_behind, lag.oldest_undelivered_age) for lag in report] == \
        [("w", 0, 0.0)] * 4
    assert all(lag.epoch == 1 and lag.heartbeat_age is not None for lag in report)
    assert health["owned"] == [0, 1, 2, 3]
    assert len(health["lag"]) == 4
    await check_exact(engine, appended)
