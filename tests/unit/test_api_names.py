"""Issue 5, acceptance 5: every name API.md §8 (snapshots), §10 (outbox), §12 (observability)
and §13 (testing helpers) lists imports from every path API.md gives for it.

The table is copied from API.md by hand (no parsing), one row per (module, name).
"""

from __future__ import annotations

import importlib

import pytest

SNAPSHOT_EXCEPTIONS = (
    "SnapshotError",
    "SnapshotDeserializationError",
    "SnapshotSchemaVersionError",
    "SnapshotNotFoundError",
)

# §8 "Import: eventsource.snapshots (also top-level eventsource for Snapshot, SnapshotStore,
# InMemorySnapshotStore and the snapshot exceptions)"; §8.3 PostgreSQL/SQLite stores,
# SQLITE_AVAILABLE and (§14) SQLiteNotAvailableError from eventsource.snapshots.
SECTION_8 = [
    *(
        (module, name)
        for module in ("eventsource.snapshots", "eventsource")
        for name in ("Snapshot", "SnapshotStore", "InMemorySnapshotStore", *SNAPSHOT_EXCEPTIONS)
    ),
    ("eventsource.snapshots", "PostgreSQLSnapshotStore"),
    ("eventsource.snapshots", "SQLiteSnapshotStore"),
    ("eventsource.snapshots", "SQLITE_AVAILABLE"),
    ("eventsource.snapshots", "SQLiteNotAvailableError"),
]

# §10 "Import: eventsource, eventsource.repositories, eventsource.repositories.outbox"; the JSON
# helpers from eventsource.repositories (the encoder also top-level).
OUTBOX_NAMES = (
    "OutboxEntry",
    "OutboxStats",
    "OutboxRepository",
    "InMemoryOutboxRepository",
    "PostgreSQLOutboxRepository",
    "SQLiteOutboxRepository",
    "OutboxRepositoryProtocol",
)
SECTION_10 = [
    *(
        (module, name)
        for module in ("eventsource", "eventsource.repositories", "eventsource.repositories.outbox")
        for name in OUTBOX_NAMES
    ),
    ("eventsource.repositories", "EventSourceJSONEncoder"),
    ("eventsource", "EventSourceJSONEncoder"),
    ("eventsource.repositories", "json_dumps"),
    ("eventsource.repositories", "json_loads"),
    ("eventsource.migrations", "get_schema"),  # the `outbox` schema
]

# §12 "Import: eventsource.observability", with the exact values of the ATTR_* constants.
ATTRIBUTES = {
    "ATTR_AGGREGATE_ID": "eventsource.aggregate.id",
    "ATTR_AGGREGATE_TYPE": "eventsource.aggregate.type",
    "ATTR_EVENT_ID": "eventsource.event.id",
    "ATTR_EVENT_TYPE": "eventsource.event.type",
    "ATTR_EVENT_COUNT": "eventsource.event.count",
    "ATTR_VERSION": "eventsource.version",
    "ATTR_EXPECTED_VERSION": "eventsource.expected_version",
    "ATTR_FROM_VERSION": "eventsource.from_version",
    "ATTR_TENANT_ID": "eventsource.tenant.id",
    "ATTR_ACTOR_ID": "eventsource.actor.id",
    "ATTR_PROJECTION_NAME": "eventsource.projection.name",
    "ATTR_HANDLER_NAME": "eventsource.handler.name",
    "ATTR_HANDLER_COUNT": "eventsource.handler.count",
    "ATTR_HANDLER_SUCCESS": "eventsource.handler.success",
    "ATTR_STREAM_ID": "eventsource.stream.id",
    "ATTR_POSITION": "eventsource.position",
    "ATTR_SUBSCRIPTION_NAME": "eventsource.subscription.name",
    "ATTR_SUBSCRIPTION_STATE": "eventsource.subscription.state",
    "ATTR_SUBSCRIPTION_PHASE": "eventsource.subscription.phase",
    "ATTR_FROM_POSITION": "eventsource.from_position",
    "ATTR_TO_POSITION": "eventsource.to_position",
    "ATTR_BATCH_SIZE": "eventsource.batch.size",
    "ATTR_BUFFER_SIZE": "eventsource.buffer.size",
    "ATTR_EVENTS_PROCESSED": "eventsource.events.processed",
    "ATTR_EVENTS_SKIPPED": "eventsource.events.skipped",
    "ATTR_WATERMARK": "eventsource.watermark",
    "ATTR_RETRY_COUNT": "eventsource.retry.count",
    "ATTR_ERROR_TYPE": "eventsource.error.type",
    "ATTR_DB_SYSTEM": "db.system",
    "ATTR_DB_NAME": "db.name",
    "ATTR_DB_OPERATION": "db.operation",
    "ATTR_MESSAGING_SYSTEM": "messaging.system",
    "ATTR_MESSAGING_DESTINATION": "messaging.destination",
    "ATTR_MESSAGING_OPERATION": "messaging.operation",
}
SECTION_12 = [
    ("eventsource.observability", name)
    for name in (
        "OTEL_AVAILABLE", "get_tracer", "traced", "TracingMixin", "should_trace", *ATTRIBUTES,
    )
]

# §13: the reset and inspection helpers of §3.3, §5.2, §5.3, §6.2, §8.3, EventRegistry.clear(),
# SQLiteEventStore for per-test databases, await_pending_snapshots() and bus.shutdown().
SECTION_13 = [
    ("eventsource", "InMemoryEventStore"),
    ("eventsource", "InMemoryCheckpointRepository"),
    ("eventsource", "InMemoryDLQRepository"),
    ("eventsource", "InMemoryEventBus"),
    ("eventsource", "InMemorySnapshotStore"),
    ("eventsource", "EventRegistry"),
    ("eventsource", "AggregateRepository"),
    ("eventsource", "SQLiteEventStore"),  # top-level when SQLITE_AVAILABLE (aiosqlite is core-run)
    ("eventsource.stores.sqlite", "SQLiteEventStore"),
]
HELPERS = {  # §13 helper members, per class
    ("eventsource", "InMemoryEventStore"): (
        "clear", "get_all_events", "get_event_count", "get_aggregate_ids",
    ),
    ("eventsource", "InMemoryCheckpointRepository"): ("clear",),
    ("eventsource", "InMemoryDLQRepository"): ("clear",),
    ("eventsource", "InMemoryOutboxRepository"): ("clear",),
    ("eventsource", "InMemoryEventBus"): (
        "get_stats", "get_subscriber_count", "get_wildcard_subscriber_count", "shutdown",
        "get_background_task_count", "clear_subscribers",
    ),
    ("eventsource", "InMemorySnapshotStore"): ("clear", "snapshot_count"),
    ("eventsource", "EventRegistry"): ("clear",),
    ("eventsource", "AggregateRepository"): ("await_pending_snapshots",),
}

ROWS = sorted(set(SECTION_8 + SECTION_10 + SECTION_12 + SECTION_13))


@pytest.mark.parametrize(("module", "name"), ROWS, ids=[f"{m}:{n}" for m, n in ROWS])
def test_name_imports_from_the_documented_path(module: str, name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module} import {name}", namespace)  # the statement a user writes
    assert namespace[name] is not None


def test_attribute_constants_have_their_documented_values() -> None:
    import eventsource.observability as observability

    assert {name: getattr(observability, name) for name in ATTRIBUTES} == ATTRIBUTES


@pytest.mark.parametrize(("owner", "members"), sorted(HELPERS.items()))
def test_testing_helpers_exist(owner: tuple[str, str], members: tuple[str, ...]) -> None:
    cls = getattr(importlib.import_module(owner[0]), owner[1])
    assert [m for m in members if not hasattr(cls, m)] == []


async def test_a_per_test_sqlite_database_as_section_13_shows() -> None:
    from eventsource import EventRegistry, SQLiteEventStore

    async with SQLiteEventStore(":memory:", event_registry=EventRegistry(), wal_mode=False) as s:
        await s.initialize()
        assert await s.get_global_position() == 0
