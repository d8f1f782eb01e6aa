"""Spans and metrics of the SQL backends in a save -> append -> project flow (API.md §3, §4,
§5, §7, §12): SQLite always, PostgreSQL on the test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from extras import import_extra

import_extra("opentelemetry.sdk")

from eventsource import AggregateRepository, InMemoryEventBus  # noqa: E402
from eventsource.observability import (  # noqa: E402
    ATTR_AGGREGATE_ID,
    ATTR_DB_NAME,
    ATTR_DB_OPERATION,
    ATTR_DB_SYSTEM,
    ATTR_EVENT_COUNT,
    ATTR_EXPECTED_VERSION,
    ATTR_PROJECTION_NAME,
    ATTR_SUBSCRIPTION_NAME,
)
from eventsource.observability.metrics import APPEND_DURATION, EVENTS_APPENDED  # noqa: E402
from eventsource.repositories.sqlite import SQLiteCheckpointRepository  # noqa: E402
from eventsource.snapshots import SQLiteSnapshotStore  # noqa: E402
from eventsource.stores.interface import EventStore  # noqa: E402
from eventsource.stores.sqlite import SQLiteEventStore  # noqa: E402
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager  # noqa: E402
from eventsource.testing.contract.bus import eventually  # noqa: E402
from otel_support import Tally, TallyTotals, Telemetry, attributes_of  # noqa: E402


async def _flow(store: EventStore, checkpoints: Any, telemetry: Telemetry) -> tuple[Any, Any]:
    """Save a tally through a repository, project it through a SubscriptionManager (woken by
    the in-memory bus the repository publishes to); return (the tally, the projection)."""
    bus = InMemoryEventBus()
    repo = AggregateRepository(store, Tally, "OtelTally", event_publisher=bus)
    totals = TallyTotals()
    manager = SubscriptionManager(store, bus, checkpoints)
    await manager.subscribe(totals, SubscriptionConfig(start_from="beginning"), name="totals")
    async with manager:
        tally = repo.create_new(uuid4())
        tally.increment(2)
        tally.increment(3)
        await repo.save(tally)
        await eventually(lambda: totals.totals.get(tally.aggregate_id) == 5, "the projection")
    return tally, totals


def _check_flow(telemetry: Telemetry, backend: str, database: str, tally: Any) -> None:
    save = telemetry.one("eventsource.repository.save")
    append = telemetry.one(f"{backend}_event_store.append_events")
    telemetry.assert_child(append, save)
    assert attributes_of(
        append, ATTR_AGGREGATE_ID, ATTR_EVENT_COUNT, ATTR_EXPECTED_VERSION, ATTR_DB_SYSTEM,
        ATTR_DB_NAME, ATTR_DB_OPERATION,
    ) == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_EVENT_COUNT: 2,
        ATTR_EXPECTED_VERSION: 0,
        ATTR_DB_SYSTEM: backend,
        ATTR_DB_NAME: database,
        ATTR_DB_OPERATION: "INSERT",
    }
    handles = telemetry.spans("eventsource.projection.handle")
    assert len(handles) == 2
    for handle in handles:
        assert handle.attributes is not None
        assert handle.attributes[ATTR_PROJECTION_NAME] == "TallyTotals"
        batch = telemetry.parent_of(handle)
        assert batch is not None
        assert batch.name == "eventsource.subscription.batch"
        assert batch.attributes is not None
        assert batch.attributes[ATTR_SUBSCRIPTION_NAME] == "totals"
    assert telemetry.counter_delta(EVENTS_APPENDED, {ATTR_DB_SYSTEM: backend}) == 2
    assert telemetry.histogram_delta(APPEND_DURATION, {ATTR_DB_SYSTEM: backend})[0] == 1


async def test_sqlite_flow(tmp_path: Path, telemetry: Telemetry) -> None:
    path = str(tmp_path / "events.db")
    async with SQLiteEventStore(path) as store:
        await store.initialize()
        checkpoints = SQLiteCheckpointRepository(store)
        tally, _ = await _flow(store, checkpoints, telemetry)
        _check_flow(telemetry, "sqlite", path, tally)
        # The SQL checkpoint repository traces too (the manager saves positions through it).
        telemetry.exporter.clear()
        await checkpoints.get_checkpoint("totals")
        assert telemetry.names() == ["eventsource.checkpoint.get_checkpoint"]

        telemetry.exporter.clear()
        repo = AggregateRepository(store, Tally, "OtelTally")
        loaded = await repo.load(tally.aggregate_id)
        assert loaded.version == 2
        read = telemetry.one("sqlite_event_store.get_events")
        load = telemetry.one("eventsource.repository.load")
        telemetry.assert_child(read, load)
        assert attributes_of(load, "snapshot.used", "events.replayed") == {
            "snapshot.used": False,
            "events.replayed": 2,
        }

        async with SQLiteSnapshotStore(path) as snapshots:
            repo = AggregateRepository(store, Tally, "OtelTally", snapshot_store=snapshots)
            await repo.create_snapshot(loaded)
            telemetry.exporter.clear()
            await repo.load(tally.aggregate_id)
            load = telemetry.one("eventsource.repository.load")
            assert attributes_of(load, "snapshot.used", "snapshot.version", "events.replayed") == {
                "snapshot.used": True,
                "snapshot.version": 2,
                "events.replayed": 0,
            }
        assert attributes_of(read, ATTR_DB_SYSTEM, ATTR_DB_OPERATION) == {
            ATTR_DB_SYSTEM: "sqlite",
            ATTR_DB_OPERATION: "SELECT",
        }


@pytest.mark.postgresql
async def test_postgresql_flow(pg_session_factory: Any, telemetry: Telemetry) -> None:
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
    from eventsource.stores.postgresql import PostgreSQLEventStore

    store = PostgreSQLEventStore(pg_session_factory)
    await store.initialize()
    try:
        checkpoints = PostgreSQLCheckpointRepository(pg_session_factory)
        tally, _ = await _flow(store, checkpoints, telemetry)
        database = store.session_factory.kw["bind"].url.database
        _check_flow(telemetry, "postgresql", database, tally)
    finally:
        await store.close()
