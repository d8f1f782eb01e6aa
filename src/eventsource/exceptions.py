"""The exception hierarchy: every library error names what was wrong."""

from __future__ import annotations

from typing import Any
from uuid import UUID

__all__ = [
    "AggregateNotFoundError",
    "CheckpointError",
    "DuplicateEventTypeError",
    "EventBusError",
    "EventNotFoundError",
    "EventSourceError",
    "EventStoreError",
    "EventStoreTimeoutError",
    "EventTypeNotFoundError",
    "EventVersionError",
    "KafkaNotAvailableError",
    "NATSNotAvailableError",
    "OptimisticLockError",
    "ProjectionError",
    "RabbitMQNotAvailableError",
    "RedisNotAvailableError",
    "SQLiteNotAvailableError",
    "SerializationError",
    "StoreNotConnectedError",
    "TenantMismatchError",
    "TenantRequiredError",
    "UnhandledEventError",
]


class EventSourceError(Exception):
    """Base of every error the library raises about events, stores and projections."""


class OptimisticLockError(EventSourceError):
    """The stream was not at the version the caller expected; nothing was written."""

    def __init__(self, aggregate_id: UUID, expected_version: int, actual_version: int) -> None:
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"Optimistic lock error for aggregate {aggregate_id}: "
            f"expected version {expected_version}, but current version is {actual_version}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.aggregate_id, self.expected_version, self.actual_version))


class AggregateNotFoundError(EventSourceError):
    """No snapshot and no event exist for the aggregate."""

    def __init__(self, aggregate_id: UUID, aggregate_type: str | None = None) -> None:
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type
        kind = f"Aggregate of type {aggregate_type}" if aggregate_type else "Aggregate"
        super().__init__(f"{kind} not found: {aggregate_id}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.aggregate_id, self.aggregate_type))


class EventNotFoundError(EventSourceError):
    """An event looked up by id does not exist."""

    def __init__(self, event_id: UUID) -> None:
        self.event_id = event_id
        super().__init__(f"Event not found: {event_id}")


class EventVersionError(EventSourceError):
    """A new event's aggregate_version is not the aggregate's next version."""

    def __init__(
        self, expected_version: int, actual_version: int, event_id: UUID, aggregate_id: UUID
    ) -> None:
        self.expected_version = expected_version
        self.actual_version = actual_version
        self.event_id = event_id
        self.aggregate_id = aggregate_id
        super().__init__(
            f"Event version mismatch for aggregate {aggregate_id}: event {event_id} has "
            f"aggregate_version {actual_version}, expected {expected_version}"
        )


class UnhandledEventError(EventSourceError):
    """A strict declarative aggregate or projection has no handler for an event."""

    def __init__(
        self,
        event_type: str,
        event_id: UUID | None,
        handler_class: str,
        available_handlers: list[str],
    ) -> None:
        self.event_type = event_type
        self.event_id = event_id
        self.handler_class = handler_class
        self.available_handlers = available_handlers
        super().__init__(
            f"No handler for event type {event_type} (event {event_id}) in {handler_class}; "
            f"handled types: {', '.join(available_handlers) or 'none'}"
        )


class ProjectionError(EventSourceError):
    """A projection failed on an event for good (after retries)."""

    def __init__(self, projection_name: str, event_id: UUID | None, message: str) -> None:
        self.projection_name = projection_name
        self.event_id = event_id
        self.message = message
        super().__init__(f"Projection {projection_name} failed on event {event_id}: {message}")


class EventStoreError(EventSourceError):
    """An event store could not do what was asked (infrastructure or stored data)."""


class EventStoreTimeoutError(EventStoreError, TimeoutError):
    """A store's operation took longer than its timeout; the message says what it waited for.

    Also a `TimeoutError`, so code that retries transient failures retries it.
    """


class StoreNotConnectedError(EventStoreError, RuntimeError):
    """A durable store was used before `initialize()` / `async with`, or after `close()`."""


class TenantRequiredError(EventSourceError):
    """Tenant-scoped code ran outside any `tenant_scope`."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "No tenant is bound: wrap the unit of work in eventsource.tenant_scope(...)"
        )


class TenantMismatchError(EventSourceError):
    """A write inside a `tenant_scope` touched another tenant's data; nothing was written.

    `tenant_id` is the other tenant, or None for data that belongs to no tenant (such as a
    stream written outside any scope with tenant-less events).
    """

    def __init__(self, bound_tenant: UUID, tenant_id: UUID | None, what: str) -> None:
        self.bound_tenant = bound_tenant
        self.tenant_id = tenant_id
        self.what = what
        owner = "no tenant" if tenant_id is None else f"tenant {tenant_id}"
        super().__init__(
            f"{what} belongs to {owner}, but the unit of work is bound to tenant "
            f"{bound_tenant}; nothing was written"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.bound_tenant, self.tenant_id, self.what))


class EventBusError(EventSourceError):
    """An event bus failed."""


class CheckpointError(EventSourceError):
    """A checkpoint could not be read or written."""


class SerializationError(EventSourceError):
    """An event could not be serialised, or a stored row could not be turned back into one."""

    def __init__(self, event_type: str | None, message: str, event_id: UUID | None = None) -> None:
        self.event_type = event_type
        self.event_id = event_id
        where = f" (event {event_id})" if event_id is not None else ""
        super().__init__(f"Cannot (de)serialise event type {event_type!r}{where}: {message}")


class RedisNotAvailableError(ImportError):
    """redis (redis-py >= 5) is not installed."""

    def __init__(self) -> None:
        super().__init__("The Redis event bus needs redis: pip install 'eventsource-py[redis]'")


class SQLiteNotAvailableError(ImportError):
    """aiosqlite is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "SQLite support needs aiosqlite: pip install 'eventsource-py[sqlite]'"
        )


class EventTypeNotFoundError(KeyError):
    """No event class is registered under this event type."""

    def __init__(self, event_type: str, available_types: list[str]) -> None:
        self.event_type = event_type
        self.available_types = available_types
        super().__init__(event_type)

    def __str__(self) -> str:
        shown = ", ".join(self.available_types[:20]) or "none"
        return f"Event type {self.event_type!r} is not registered (registered: {shown})"


class DuplicateEventTypeError(ValueError):
    """A different class is already registered under this event type."""

    def __init__(self, event_type: str, existing_class: type, new_class: type) -> None:
        self.event_type = event_type
        self.existing_class = existing_class
        self.new_class = new_class
        super().__init__(
            f"Event type {event_type!r} is already registered to "
            f"{existing_class.__module__}.{existing_class.__qualname__}; cannot register "
            f"{new_class.__module__}.{new_class.__qualname__}"
        )


class KafkaNotAvailableError(ImportError):
    """aiokafka is not installed."""

    def __init__(self) -> None:
        super().__init__("The Kafka event bus needs aiokafka: pip install 'eventsource-py[kafka]'")


class NATSNotAvailableError(ImportError):
    """nats-py is not installed."""

    def __init__(self) -> None:
        super().__init__("The NATS event bus needs nats-py: pip install 'eventsource-py[nats]'")
class RabbitMQNotAvailableError(ImportError):
    """aio-pika is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "The RabbitMQ event bus needs aio-pika: pip install 'eventsource-py[rabbitmq]'"
        )
