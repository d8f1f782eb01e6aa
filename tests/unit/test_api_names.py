"""Every name API.md lists imports from every path API.md gives for it (issue 5 for §8, §10,
§12, §13; issue 12 for the rest), and so does every name the README and docs/ name.

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
    ("eventsource", "SQLiteEventStore"),  # top-level when SQLITE_AVAILABLE (a dependency)
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



def rows(modules: tuple[str, ...], *names: str) -> list[tuple[str, str]]:
    """Each of `names` from each of `modules`: what one "Import:" line of API.md promises."""
    return [(module, name) for module in modules for name in names]


BUS_NAMES = ("EventBus", "EventBusConfig", "EventBusStats", "NotAvailableError")
# §0 "Top-level exports (from eventsource import X must work)", SQLite names included (aiosqlite
# is a dependency, so SQLITE_AVAILABLE holds), and the *_AVAILABLE flag of each integration.
SECTION_0 = rows(
    ("eventsource",),
    "DomainEvent", "EventRegistry", "default_registry", "register_event", "get_event_class",
    "get_event_class_or_none", "is_event_registered", "list_registered_events",
    "EventTypeNotFoundError", "DuplicateEventTypeError", "AggregateRoot", "DeclarativeAggregate",
    "AggregateRepository", "handles", "EventStore", "EventPublisher", "EventStream",
    "AppendResult", "StoredEvent", "ReadOptions", "ReadDirection", "ExpectedVersion",
    "InMemoryEventStore", "PostgreSQLEventStore", "SQLITE_AVAILABLE", "SQLiteEventStore",
    "SQLiteCheckpointRepository", "SQLiteDLQRepository", "SQLiteOutboxRepository", "EventBus",
    "EventHandlerFunc", "AsyncEventHandler", "InMemoryEventBus", "EventHandler",
    "SyncEventHandler", "FlexibleEventHandler", "EventSubscriber", "FlexibleEventSubscriber",
    *(bus + suffix for bus in ("Redis", "RabbitMQ", "Kafka") for suffix in BUS_NAMES),
    "REDIS_AVAILABLE", "RABBITMQ_AVAILABLE", "KAFKA_AVAILABLE",
    "EventSourceError", "OptimisticLockError", "AggregateNotFoundError", "EventNotFoundError",
    "EventVersionError", "ProjectionError", "CheckpointRepository",
    "InMemoryCheckpointRepository", "PostgreSQLCheckpointRepository", "CheckpointData",
    "LagMetrics", "DLQRepository", "InMemoryDLQRepository", "PostgreSQLDLQRepository",
    "DLQEntry", "DLQStats", "ProjectionFailureCount", "OutboxRepository",
    "InMemoryOutboxRepository", "PostgreSQLOutboxRepository", "OutboxEntry", "OutboxStats",
    "EventSourceJSONEncoder", "Projection", "CheckpointTrackingProjection",
    "DeclarativeProjection", "DatabaseProjection", "Snapshot", "SnapshotStore",
    "InMemorySnapshotStore", *SNAPSHOT_EXCEPTIONS,
    "AggregateId", "EventId", "TenantId", "CorrelationId", "CausationId", "TState",
) + rows(
    ("eventsource.types",),
    "AggregateId", "EventId", "TenantId", "CorrelationId", "CausationId", "TState",
)
REGISTRY = (
    "EventRegistry", "default_registry", "register_event", "is_event_registered",
    "list_registered_events", "get_event_class", "get_event_class_or_none",
    "EventTypeNotFoundError", "DuplicateEventTypeError",
)
SECTIONS_1_TO_4 = [
    *rows(("eventsource", "eventsource.events", "eventsource.events.base"), "DomainEvent"),
    *rows(("eventsource", "eventsource.events", "eventsource.events.registry"), *REGISTRY),
    *rows(
        ("eventsource", "eventsource.aggregates", "eventsource.aggregates.base"),
        "AggregateRoot", "DeclarativeAggregate",
    ),
    *rows(
        ("eventsource", "eventsource.projections", "eventsource.projections.decorators"),
        "handles",
    ),
    *rows(
        ("eventsource.projections", "eventsource.projections.decorators"),
        "get_handled_event_type", "is_event_handler",
    ),
    *rows(
        ("eventsource", "eventsource.stores", "eventsource.stores.interface"),
        "ExpectedVersion", "AppendResult", "EventStream", "StoredEvent", "ReadDirection",
        "ReadOptions", "EventPublisher", "EventStore",
    ),
    *rows(
        ("eventsource", "eventsource.stores", "eventsource.stores.in_memory"),
        "InMemoryEventStore",
    ),
    *rows(("eventsource", "eventsource.stores", "eventsource.stores.sqlite"), "SQLiteEventStore"),
    *rows(("eventsource", "eventsource.stores.sqlite"), "SQLITE_AVAILABLE"),
    *rows(
        ("eventsource", "eventsource.stores", "eventsource.stores.postgresql"),
        "PostgreSQLEventStore",
    ),
    *rows(
        ("eventsource.stores",),
        "TypeConverter", "DefaultTypeConverter", "DEFAULT_UUID_FIELDS", "DEFAULT_STRING_ID_FIELDS",
    ),
    *rows(("eventsource.migrations",), "get_schema", "get_all_schemas"),
    *rows(
        ("eventsource", "eventsource.aggregates", "eventsource.aggregates.repository"),
        "AggregateRepository",
    ),
]
SECTIONS_5_TO_7 = [
    *rows(
        ("eventsource", "eventsource.projections", "eventsource.projections.base"),
        "Projection", "CheckpointTrackingProjection", "DeclarativeProjection",
        "DatabaseProjection",
    ),
    *rows(
        ("eventsource", "eventsource.repositories", "eventsource.repositories.checkpoint"),
        "CheckpointData", "LagMetrics", "CheckpointRepository", "InMemoryCheckpointRepository",
        "PostgreSQLCheckpointRepository", "SQLiteCheckpointRepository",
    ),
    *rows(
        ("eventsource.repositories", "eventsource.repositories.checkpoint"),
        "CheckpointRepositoryProtocol",
    ),
    *rows(
        ("eventsource", "eventsource.repositories", "eventsource.repositories.dlq"),
        "DLQEntry", "DLQStats", "ProjectionFailureCount", "DLQRepository",
        "InMemoryDLQRepository", "PostgreSQLDLQRepository", "SQLiteDLQRepository",
    ),
    ("eventsource.projections.dlq_manager", "ProjectionDLQManager"),
    ("eventsource.projections.checkpoint_manager", "ProjectionCheckpointManager"),
    *rows(
        ("eventsource.projections.retry",),
        "RetryPolicy", "ExponentialBackoffRetryPolicy", "NoRetryPolicy", "FilteredRetryPolicy",
        "DEFAULT_RETRY_POLICY",
    ),
    *rows(
        ("eventsource.subscriptions.retry", "eventsource.subscriptions"),
        "RetryConfig", "TRANSIENT_EXCEPTIONS", "calculate_backoff", "is_retryable_exception",
        "retry_async", "RetryStats", "CircuitBreaker", "CircuitBreakerConfig", "CircuitState",
        "CircuitBreakerOpenError", "RetryableOperation", "RetryError",
    ),
    *rows(("eventsource", "eventsource.bus", "eventsource.bus.interface"), "EventBus"),
    *rows(("eventsource", "eventsource.bus", "eventsource.bus.memory"), "InMemoryEventBus"),
    *rows(
        ("eventsource", "eventsource.protocols", "eventsource.bus"),
        "EventHandler", "SyncEventHandler", "FlexibleEventHandler", "EventSubscriber",
        "FlexibleEventSubscriber", "EventHandlerFunc", "AsyncEventHandler",
    ),
    *rows(("eventsource.projections",), "EventHandler", "SyncEventHandler", "EventSubscriber"),
    *rows(
        ("eventsource.subscriptions",),
        "CheckpointStrategy", "StartPosition", "SubscriptionConfig", "create_catch_up_config",
        "create_live_only_config", "SubscriptionManager", "Subscription", "SubscriptionState",
        "SubscriptionStatus", "PauseReason", "ErrorCategory", "ErrorSeverity",
        "ErrorClassification", "ErrorClassifier", "get_default_classifier", "ErrorInfo",
        "ErrorHandlingConfig", "ErrorHandlingStrategy", "ErrorStats", "SubscriptionErrorHandler",
        "ErrorHandlerRegistry", "ErrorCallback", "SyncErrorCallback", "HealthCheckConfig",
        "HealthStatus", "HealthIndicator", "HealthCheckResult", "ManagerHealth",
        "SubscriptionHealth", "ReadinessStatus", "LivenessStatus", "ShutdownPhase",
        "ShutdownResult", "ShutdownCoordinator", "SubscriptionError", "SubscriptionConfigError",
        "SubscriptionStateError", "SubscriptionAlreadyExistsError", "CheckpointNotFoundError",
        "EventStoreConnectionError", "EventBusConnectionError", "TransitionError",
    ),
    ("eventsource.subscriptions.manager", "SubscriptionManager"),
    *rows(
        ("eventsource.subscriptions.config",),
        "CheckpointStrategy", "SubscriptionConfig", "create_catch_up_config",
        "create_live_only_config",
    ),
    *rows(
        ("eventsource.subscriptions.error_handling",),
        "ErrorCategory", "ErrorSeverity", "ErrorClassification", "ErrorInfo",
        "ErrorHandlingConfig", "ErrorHandlingStrategy",
    ),
    *rows(
        ("eventsource.subscriptions.health",),
        "HealthCheckConfig", "ManagerHealth", "SubscriptionHealth", "ReadinessStatus",
        "LivenessStatus",
    ),
]
# §11: each broker bus's five names from the package, eventsource.bus and its module (NATS too).
BROKERS = {"redis": "Redis", "kafka": "Kafka", "rabbitmq": "RabbitMQ", "nats": "NATS"}
SECTION_11 = [
    (module, name)
    for bus, prefix in BROKERS.items()
    for module in ("eventsource", "eventsource.bus", f"eventsource.bus.{bus}")
    for name in (*(prefix + suffix for suffix in BUS_NAMES), f"{bus.upper()}_AVAILABLE")
]
# §14 import paths, plus what the README and docs/ name: the tenancy names, the store errors of
# docs/stores.md, and the subscription manager, from the package and from their own module.
LIBRARY_ERRORS = (
    "EventSourceError", "OptimisticLockError", "AggregateNotFoundError", "EventNotFoundError",
    "EventVersionError", "UnhandledEventError", "ProjectionError", "EventStoreError",
    "EventBusError", "CheckpointError", "SerializationError", "StoreNotConnectedError",
    "CorruptEventError", "TenantRequiredError", "TenantMismatchError", "MissingExtraError",
    "RedisNotAvailableError", "KafkaNotAvailableError", "RabbitMQNotAvailableError",
    "NATSNotAvailableError", "SQLiteNotAvailableError", "PostgreSQLNotAvailableError",
)
SECTION_14_AND_DOCS = [
    *rows(("eventsource.exceptions",), *LIBRARY_ERRORS),
    *rows(
        ("eventsource",),
        "UnhandledEventError", "StoreNotConnectedError", "CorruptEventError",
        "TenantRequiredError", "TenantMismatchError", "MissingExtraError",
        "SQLiteNotAvailableError", "PostgreSQLNotAvailableError", "SubscriptionManager",
        "OutboxRelay", "tenant_scope", "current_tenant", "require_tenant", "EventStoreError",
        "SerializationError",
    ),
    ("eventsource.stores", "CorruptEventError"),  # the private module it lived in is gone
    *rows(("eventsource.tenancy",), "tenant_scope", "current_tenant", "require_tenant"),
    ("eventsource.repositories.checkpoint", "scoped_checkpoint_name"),
    *rows(
        ("eventsource.repositories", "eventsource.repositories.outbox_relay"),
        "OutboxRelay", "RelayPassResult", "RelayStats",
    ),
    ("eventsource.repositories.outbox", "RelayOutbox"),
    *rows(("eventsource.snapshots",), "SQLiteSnapshotStore", "PostgreSQLSnapshotStore"),
]

ROWS = sorted(
    set(
        SECTION_0 + SECTIONS_1_TO_4 + SECTIONS_5_TO_7 + SECTION_8 + SECTION_10 + SECTION_11
        + SECTION_12 + SECTION_13 + SECTION_14_AND_DOCS
    )
)


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
