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
    "StoreNotConnectedError": "eventsource.exceptions",
    "CorruptEventError": "eventsource.exceptions",
    "EventStoreTimeoutError": "eventsource.exceptions",
    "DatabaseLockedError": "eventsource.exceptions",
    "DatabaseFileChangedError": "eventsource.exceptions",
    "CheckpointError": "eventsource.exceptions",
    "MissingExtraError": "eventsource.exceptions",
    "SQLiteNotAvailableError": "eventsource.exceptions",
    "PostgreSQLNotAvailableError": "eventsource.exceptions",
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
    # subscriptions
    "SubscriptionManager": "eventsource.subscriptions.manager",
    "SubscriptionConfig": "eventsource.subscriptions.config",
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

# Present only when aiosqlite (a dependency) is installed: SQLITE_AVAILABLE. Without it they
# raise SQLiteNotAvailableError, which says what to install.
_SQLITE_EXPORTS: dict[str, str] = {
    "SQLiteEventStore": "eventsource.stores.sqlite",
    "SQLiteCheckpointRepository": "eventsource.repositories.sqlite",
    "SQLiteDLQRepository": "eventsource.repositories.sqlite",
    "SQLiteOutboxRepository": "eventsource.repositories.sqlite",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605


def _load(name: str) -> Any:
    """Import a public name on first use and keep it here, so later lookups are plain reads."""
    module = _EXPORTS.get(name)
    if module is None and name in _SQLITE_EXPORTS:
        if not import_module("eventsource.stores.sqlite").SQLITE_AVAILABLE:
            from eventsource.exceptions import SQLiteNotAvailableError

            raise SQLiteNotAvailableError
        module = _SQLITE_EXPORTS[name]
    if module is None:
        raise AttributeError(f"module 'eventsource' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if not TYPE_CHECKING:
    # Hidden from type checkers, which see the imports at the end instead: so every public name
    # has its real type, and a misspelt one is an error rather than an `Any`.
    __getattr__ = _load


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    # `X as X` marks each name as exported for type checkers (ruff's isort would split the
    # aliased imports into one statement per name).
    # isort: off
    from eventsource.aggregates.base import (
        AggregateRoot as AggregateRoot,
        DeclarativeAggregate as DeclarativeAggregate,
    )
    from eventsource.aggregates.repository import AggregateRepository as AggregateRepository
    from eventsource.bus.interface import EventBus as EventBus
    from eventsource.bus.kafka import (
        KAFKA_AVAILABLE as KAFKA_AVAILABLE,
        KafkaEventBus as KafkaEventBus,
        KafkaEventBusConfig as KafkaEventBusConfig,
        KafkaEventBusStats as KafkaEventBusStats,
        KafkaNotAvailableError as KafkaNotAvailableError,
    )
    from eventsource.bus.memory import InMemoryEventBus as InMemoryEventBus
    from eventsource.bus.nats import (
        NATS_AVAILABLE as NATS_AVAILABLE,
        NATSEventBus as NATSEventBus,
        NATSEventBusConfig as NATSEventBusConfig,
        NATSEventBusStats as NATSEventBusStats,
        NATSNotAvailableError as NATSNotAvailableError,
    )
    from eventsource.bus.rabbitmq import (
        RABBITMQ_AVAILABLE as RABBITMQ_AVAILABLE,
        RabbitMQEventBus as RabbitMQEventBus,
        RabbitMQEventBusConfig as RabbitMQEventBusConfig,
        RabbitMQEventBusStats as RabbitMQEventBusStats,
        RabbitMQNotAvailableError as RabbitMQNotAvailableError,
    )
    from eventsource.bus.redis import (
        REDIS_AVAILABLE as REDIS_AVAILABLE,
        RedisEventBus as RedisEventBus,
        RedisEventBusConfig as RedisEventBusConfig,
        RedisEventBusStats as RedisEventBusStats,
        RedisNotAvailableError as RedisNotAvailableError,
    )
    from eventsource.events.base import DomainEvent as DomainEvent
    from eventsource.events.registry import (
        EventRegistry as EventRegistry,
        default_registry as default_registry,
        get_event_class as get_event_class,
        get_event_class_or_none as get_event_class_or_none,
        is_event_registered as is_event_registered,
        list_registered_events as list_registered_events,
        register_event as register_event,
    )
    from eventsource.exceptions import (
        AggregateNotFoundError as AggregateNotFoundError,
        CheckpointError as CheckpointError,
        CorruptEventError as CorruptEventError,
        DatabaseFileChangedError as DatabaseFileChangedError,
        DatabaseLockedError as DatabaseLockedError,
        DuplicateEventTypeError as DuplicateEventTypeError,
        EventNotFoundError as EventNotFoundError,
        EventSourceError as EventSourceError,
        EventStoreError as EventStoreError,
        EventStoreTimeoutError as EventStoreTimeoutError,
        EventTypeNotFoundError as EventTypeNotFoundError,
        EventVersionError as EventVersionError,
        MissingExtraError as MissingExtraError,
        OptimisticLockError as OptimisticLockError,
        PostgreSQLNotAvailableError as PostgreSQLNotAvailableError,
        ProjectionError as ProjectionError,
        SQLiteNotAvailableError as SQLiteNotAvailableError,
        SerializationError as SerializationError,
        StoreNotConnectedError as StoreNotConnectedError,
        TenantMismatchError as TenantMismatchError,
        TenantRequiredError as TenantRequiredError,
        UnhandledEventError as UnhandledEventError,
    )
    from eventsource.projections.base import (
        CheckpointTrackingProjection as CheckpointTrackingProjection,
        DatabaseProjection as DatabaseProjection,
        DeclarativeProjection as DeclarativeProjection,
        Projection as Projection,
    )
    from eventsource.projections.decorators import handles as handles
    from eventsource.protocols import (
        AsyncEventHandler as AsyncEventHandler,
        EventHandler as EventHandler,
        EventHandlerFunc as EventHandlerFunc,
        EventSubscriber as EventSubscriber,
        FlexibleEventHandler as FlexibleEventHandler,
        FlexibleEventSubscriber as FlexibleEventSubscriber,
        SyncEventHandler as SyncEventHandler,
    )
    from eventsource.repositories._json import EventSourceJSONEncoder as EventSourceJSONEncoder
    from eventsource.repositories.checkpoint import (
        CheckpointData as CheckpointData,
        CheckpointRepository as CheckpointRepository,
        InMemoryCheckpointRepository as InMemoryCheckpointRepository,
        LagMetrics as LagMetrics,
    )
    from eventsource.repositories.dlq import (
        DLQEntry as DLQEntry,
        DLQRepository as DLQRepository,
        DLQStats as DLQStats,
        InMemoryDLQRepository as InMemoryDLQRepository,
        ProjectionFailureCount as ProjectionFailureCount,
    )
    from eventsource.repositories.outbox import (
        InMemoryOutboxRepository as InMemoryOutboxRepository,
        OutboxEntry as OutboxEntry,
        OutboxRepository as OutboxRepository,
        OutboxRepositoryProtocol as OutboxRepositoryProtocol,
        OutboxStats as OutboxStats,
    )
    from eventsource.repositories.outbox_relay import OutboxRelay as OutboxRelay
    from eventsource.repositories.postgresql import (
        PostgreSQLCheckpointRepository as PostgreSQLCheckpointRepository,
        PostgreSQLDLQRepository as PostgreSQLDLQRepository,
        PostgreSQLOutboxRepository as PostgreSQLOutboxRepository,
    )
    from eventsource.repositories.sqlite import (
        SQLiteCheckpointRepository as SQLiteCheckpointRepository,
        SQLiteDLQRepository as SQLiteDLQRepository,
        SQLiteOutboxRepository as SQLiteOutboxRepository,
    )
    from eventsource.snapshots.exceptions import (
        SnapshotDeserializationError as SnapshotDeserializationError,
        SnapshotError as SnapshotError,
        SnapshotNotFoundError as SnapshotNotFoundError,
        SnapshotSchemaVersionError as SnapshotSchemaVersionError,
    )
    from eventsource.snapshots.in_memory import InMemorySnapshotStore as InMemorySnapshotStore
    from eventsource.snapshots.interface import Snapshot as Snapshot, SnapshotStore as SnapshotStore
    from eventsource.stores.in_memory import InMemoryEventStore as InMemoryEventStore
    from eventsource.stores.interface import (
        AppendResult as AppendResult,
        CommittedPage as CommittedPage,
        EventPublisher as EventPublisher,
        EventStore as EventStore,
        EventStream as EventStream,
        ExpectedVersion as ExpectedVersion,
        ReadDirection as ReadDirection,
        ReadOptions as ReadOptions,
        StoredEvent as StoredEvent,
    )
    from eventsource.stores.postgresql import PostgreSQLEventStore as PostgreSQLEventStore
    from eventsource.stores.sqlite import (
        SQLITE_AVAILABLE as SQLITE_AVAILABLE,
        SQLiteEventStore as SQLiteEventStore,
    )
    from eventsource.subscriptions.config import SubscriptionConfig as SubscriptionConfig
    from eventsource.subscriptions.manager import SubscriptionManager as SubscriptionManager
    from eventsource.tenancy import (
        current_tenant as current_tenant,
        require_tenant as require_tenant,
        tenant_scope as tenant_scope,
    )
    from eventsource.types import (
        AggregateId as AggregateId,
        CausationId as CausationId,
        CorrelationId as CorrelationId,
        EventId as EventId,
        TState as TState,
        TenantId as TenantId,
    )
    # isort: on
