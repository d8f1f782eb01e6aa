"""Inconsistent partitioned-subscription configurations fail at start with typed errors
(issue 17, acceptance 6), on SQLite and PostgreSQL; nothing is left claimed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from scale_child import Audit, Tick
from scale_fixtures import backend_fixture, where_fixture  # noqa: F401 - fixtures
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from eventsource.scaling import (
    PartitionCountMismatchError,
    PartitionedWorker,
    ScalingConfigurationError,
    SubscriptionNameCollisionError,
    repartition,
)
from eventsource.stores.interface import EventStore

Backend = tuple[EventStore, AsyncEngine]


def _worker(backend: Backend, partitions: int = 16, name: str = "audit",
            handler_name: str = "audit.v1", worker_id: str = "w") -> PartitionedWorker:
    store, engine = backend
    return PartitionedWorker(store, engine, name, Audit(worker_id, 0, None, 0),
                             partitions=partitions, lease_ttl=2, heartbeat=0.5,
                             worker_id=worker_id, handler_name=handler_name)


async def _claimed_by(engine: AsyncEngine, worker: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(
            "SELECT COUNT(*) FROM scaling_partitions WHERE owner = :w"), {"w": worker}
        )).scalar_one())


async def test_a_worker_declaring_another_partition_count_is_refused(backend: Backend) -> None:
    async with _worker(backend, worker_id="first") as first:
        assert len(first.owned) == 16
        with pytest.raises(PartitionCountMismatchError, match=r"16 partitions.*declares 8"):
            await _worker(backend, partitions=8, worker_id="second").start()
    assert await _claimed_by(backend[1], "second") == 0


async def test_two_handlers_under_one_subscription_name_are_refused(backend: Backend) -> None:
    async with _worker(backend, worker_id="first"):
        other = _worker(backend, handler_name="billing.v1", worker_id="second")
        with pytest.raises(SubscriptionNameCollisionError, match=r"'audit'.*billing\.v1"):
            await other.start()
    assert await _claimed_by(backend[1], "second") == 0


async def test_both_errors_are_configuration_errors(backend: Backend) -> None:
    await _worker(backend).leases.register("audit.v1")
    with pytest.raises(ScalingConfigurationError):
        await _worker(backend, partitions=4).start()
    with pytest.raises(ScalingConfigurationError):
        await _worker(backend, handler_name="x").start()


async def test_repartition_only_at_one_common_position_and_with_no_holder(
    backend: Backend,
) -> None:
    store, engine = backend
    stream = uuid.uuid4()
    await store.append_events(stream, "ScaleStream", [Tick(aggregate_id=stream, n=1)], 0)
    async with _worker(backend, partitions=4) as worker:
        with pytest.raises(ScalingConfigurationError, match="4 are held"):
            await repartition(engine, "audit", 8)
        async with asyncio.timeout(30):
            while worker.events_delivered < 1:  # noqa: ASYNC110 - polls another process's state
                await asyncio.sleep(0.02)
        epochs = set(worker.owned.values())
    await repartition(engine, "audit", 8)
    async with _worker(backend, partitions=8) as grown:
        assert len(grown.owned) == 8
        assert min(grown.owned.values()) > max(epochs)
        await asyncio.sleep(0.3)
        assert grown.events_delivered == 0  # resumed at the common position: nothing again
    with pytest.raises(PartitionCountMismatchError):
        await _worker(backend, partitions=4).start()
