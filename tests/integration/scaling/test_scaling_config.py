"""Inconsistent partitioned-subscription configurations fail at start with typed errors
(issue 17, acceptance 6), on SQLite and PostgreSQL; nothing is left claimed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from scale_child import Audit, open_store, prepare
from eventsource.scaling import (
    PartitionCountMismatchError,
    PartitionedWorker,
    ScalingConfigurationError,
    SubscriptionNameCollisionError,
)
from eventsource.stores.interface import EventStore

Backend = tuple[EventStore, AsyncEngine]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "postgresql":
        return "postgresql", f"{request.getfixturevalue('pg_url')} " \
            f"{request.getfixturevalue('pg_schema')}"
    return "sqlite", str(tmp_path / "events.db")


@pytest.fixture
async def backend(where: tuple[str, str]) -> AsyncIterator[Backend]:
    await prepare(*where)
    async with open_store(*where) as opened:
        yield opened


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
        with pytest.raises(PartitionCountMismatchError, match="16 partitions.*declares 8"):
            await _worker(backend, partitions=8, worker_id="second").start()
    assert await _claimed_by(backend[1], "second") == 0


async def test_two_handlers_under_one_subscription_name_are_refused(backend: Backend) -> None:
    async with _worker(backend, worker_id="first"):
        other = _worker(backend, handler_name="billing.v1", worker_id="second")
        with pytest.raises(SubscriptionNameCollisionError, match="'audit'.*billing.v1"):
            await other.start()
    assert await _claimed_by(backend[1], "second") == 0


async def test_both_errors_are_configuration_errors(backend: Backend) -> None:
    await _worker(backend).leases.register("audit.v1")
    with pytest.raises(ScalingConfigurationError):
        await _worker(backend, partitions=4).start()
    with pytest.raises(ScalingConfigurationError):
        await _worker(backend, handler_name="x").start()
