"""eventsource: async-first event sourcing for Python.

Public names load lazily, so `import eventsource` needs only pydantic: database and broker
drivers are imported by the backend that uses them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # events
    "DomainEvent": "eventsource.events.base",
    "EventRegistry": "eventsource.events.registry",
    "default_registry": "eventsource.events.registry",
    "register_event": "eventsource.events.registry",
    "get_event_class": "eventsource.events.registry",
    "get_event_class_or_none": "eventsource.events.registry",
    "is_event_registered": "eventsource.events.registry",
    "list_registered_events": "eventsource.events.registry",
    # aggregates
    "AggregateRoot": "eventsource.aggregates.base",
    "DeclarativeAggregate": "eventsource.aggregates.base",
    "AggregateRepository": "eventsource.aggregates.repository",
    "handles": "eventsource.projections.decorators",
    # stores
    "EventStore": "eventsource.stores.interface",
    "EventPublisher": "eventsource.stores.interface",
    "EventStream": "eventsource.stores.interface",
    "AppendResult": "eventsource.stores.interface",
    "StoredEvent": "eventsource.stores.interface",
    "ReadOptions": "eventsource.stores.interface",
    "ReadDirection": "eventsource.stores.interface",
    "ExpectedVersion": "eventsource.stores.interface",
    "CommittedPage": "eventsource.stores.interface",
    "InMemoryEventStore": "eventsource.stores.in_memory",
    "PostgreSQLEventStore": "eventsource.stores.postgresql",
    "SQLITE_AVAILABLE": "eventsource.stores.sqlite",
    # protocols
    "EventHandlerFunc": "eventsource.protocols",
    "AsyncEventHandler": "eventsource.protocols",
    "EventHandler": "eventsource.protocols",
    "SyncEventHandler": "eventsource.protocols",
    "FlexibleEventHandler": "eventsource.protocols",
    "EventSubscriber": "eventsource.protocols",
    "FlexibleEventSubscriber": "eventsource.protocols",
    # exceptions
    "EventSourceError": "eventsource.exceptions",
    "OptimisticLockError": "eventsource.exceptions",
    "AggregateNotFoundError": "eventsource.exceptions",
    "EventNotFoundError": "eventsource.exceptions",
    "EventVersionError": "eventsource.exceptions",
    "ProjectionError": "eventsource.exceptions",
    "UnhandledEventError": "eventsource.exceptions",
    "SerializationError": "eventsource.exceptions",
    "EventStoreError": "eventsource.exceptions",
    "EventTypeNotFoundError": "eventsource.exceptions",
    "DuplicateEventTypeError": "eventsource.exceptions",
    "TenantRequiredError": "eventsource.exceptions",
    "TenantMismatchError": "eventsource.exceptions",
    # tenancy
    "tenant_scope": "eventsource.tenancy",
    "current_tenant": "eventsource.tenancy",
    "require_tenant": "eventsource.tenancy",
    # snapshots
    "Snapshot": "eventsource.snapshots.interface",
    "SnapshotStore": "eventsource.snapshots.interface",
    "InMemorySnapshotStore": "eventsource.snapshots.in_memory",
    "SnapshotError": "eventsource.snapshots.exceptions",
    "SnapshotDeserializationError": "eventsource.snapshots.exceptions",
    "SnapshotSchemaVersionError": "eventsource.snapshots.exceptions",
    "SnapshotNotFoundError": "eventsource.snapshots.exceptions",
    # bus
    "EventBus": "eventsource.bus.interface",
    "InMemoryEventBus": "eventsource.bus.memory",
    # projections and their repositories
    "Projection": "eventsource.projections.base",
    "CheckpointTrackingProjection": "eventsource.projections.base",
    "DeclarativeProjection": "eventsource.projections.base",
    "DatabaseProjection": "eventsource.projections.base",
    "CheckpointRepository": "eventsource.repositories.checkpoint",
    "InMemoryCheckpointRepository": "eventsource.repositories.checkpoint",
    "CheckpointData": "eventsource.repositories.checkpoint",
    "LagMetrics": "eventsource.repositories.checkpoint",
    "DLQRepository": "eventsource.repositories.dlq",
    "InMemoryDLQRepository": "eventsource.repositories.dlq",
    "DLQEntry": "eventsource.repositories.dlq",
    "DLQStats": "eventsource.repositories.dlq",
    "ProjectionFailureCount": "eventsource.repositories.dlq",
    "OutboxRepository": "eventsource.repositories.outbox",
    "InMemoryOutboxRepository": "eventsource.repositories.outbox",
    "OutboxEntry": "eventsource.repositories.outbox",
    "OutboxStats": "eventsource.repositories.outbox",
    "OutboxRelay": "eventsource.repositories.outbox_relay",
    "OutboxRepositoryProtocol": "eventsource.repositories.outbox",
    "EventSourceJSONEncoder": "eventsource.repositories._json",
    "PostgreSQLCheckpointRepository": "eventsource.repositories.postgresql",
    "PostgreSQLDLQRepository": "eventsource.repositories.postgresql",
    "PostgreSQLOutboxRepository": "eventsource.repositories.postgresql",
    # broker buses (drivers load only when used)
    "RedisEventBus": "eventsource.bus.redis",
    "RedisEventBusConfig": "eventsource.bus.redis",
    "RedisEventBusStats": "eventsource.bus.redis",
    "RedisNotAvailableError": "eventsource.bus.redis",
    "REDIS_AVAILABLE": "eventsource.bus.redis",
    "KafkaEventBus": "eventsource.bus.kafka",
    "KafkaEventBusConfig": "eventsource.bus.kafka",
    "KafkaEventBusStats": "eventsource.bus.kafka",
    "KafkaNotAvailableError": "eventsource.bus.kafka",
    "KAFKA_AVAILABLE": "eventsource.bus.kafka",
    "RabbitMQEventBus": "eventsource.bus.rabbitmq",
    "RabbitMQEventBusConfig": "eventsource.bus.rabbitmq",
    "RabbitMQEventBusStats": "eventsource.bus.rabbitmq",
    "RabbitMQNotAvailableError": "eventsource.bus.rabbitmq",
    "RABBITMQ_AVAILABLE": "eventsource.bus.rabbitmq",
    "NATSEventBus": "eventsource.bus.nats",
    "NATSEventBusConfig": "eventsource.bus.nats",
    "NATSEventBusStats": "eventsource.bus.nats",
    "NATSNotAvailableError": "eventsource.bus.nats",
    "NATS_AVAILABLE": "eventsource.bus.nats",
    # types
    "AggregateId": "eventsource.types",
    "EventId": "eventsource.types",
    "TenantId": "eventsource.types",
    "CorrelationId": "eventsource.types",
    "CausationId": "eventsource.types",
    "TState": "eventsource.types",
}

# Present only when aiosqlite is installed (SQLITE_AVAILABLE).
_SQLITE_EXPORTS: dict[str, str] = {
    "SQLiteEventStore": "eventsource.stores.sqlite",
    "SQLiteCheckpointRepository": "eventsource.repositories.sqlite",
    "SQLiteDLQRepository": "eventsource.repositories.sqlite",
    "SQLiteOutboxRepository": "eventsource.repositories.sqlite",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if (
        module is None
        and name in _SQLITE_EXPORTS
        and import_module("eventsource.stores.sqlite").SQLITE_AVAILABLE
    ):
        module = _SQLITE_EXPORTS[name]
    if module is None:
        raise AttributeError(f"module 'eventsource' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from eventsource.aggregates.base import AggregateRoot, DeclarativeAggregate
    from eventsource.aggregates.repository import AggregateRepository
    from eventsource.events.base import DomainEvent
    from eventsource.events.registry import (
        EventRegistry,
        default_registry,
        get_event_class,
        get_event_class_or_none,
        is_event_registered,
        list_registered_events,
        register_event,
    )
    from eventsource.exceptions import (
        AggregateNotFoundError,
        DuplicateEventTypeError,
        EventNotFoundError,
        EventSourceError,
        EventStoreError,
        EventTypeNotFoundError,
        EventVersionError,
        OptimisticLockError,
        ProjectionError,
        SerializationError,
        TenantMismatchError,
        TenantRequiredError,
        UnhandledEventError,
    )
    from eventsource.projections.decorators import handles
    from eventsource.snapshots.in_memory import InMemorySnapshotStore
    from eventsource.snapshots.interface import Snapshot, SnapshotStore
    from eventsource.stores.in_memory import InMemoryEventStore
    from eventsource.stores.interface import (
        AppendResult,
        CommittedPage,
        EventPublisher,
        EventStore,
        EventStream,
        ExpectedVersion,
        ReadDirection,
        ReadOptions,
        StoredEvent,
    )
    from eventsource.tenancy import current_tenant, require_tenant, tenant_scope
