"""The exception hierarchy: every library error names what was wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

if TYPE_CHECKING:
    from eventsource.stores.records import CommittedPage

__all__ = [
    "AggregateNotFoundError",
    "CheckpointError",
    "CorruptEventError",
    "DatabaseFileChangedError",
    "DatabaseLockedError",
    "DuplicateEventTypeError",
    "EventBusError",
    "EventNotFoundError",
    "EventSourceError",
    "EventStoreError",
    "EventStoreTimeoutError",
    "EventTypeNotFoundError",
    "EventVersionError",
    "InvalidHandlerError",
    "KafkaNotAvailableError",
    "KeyStoreUnavailableError",  # personal data (eventsource.personal)
    "MissingExtraError",
    "NATSNotAvailableError",
    "OptimisticLockError",
    "PersonalDataDeclarationError",  # personal data (eventsource.personal)
    "PersonalDataError",  # personal data (eventsource.personal)
    "PersonalDataIntegrityError",  # personal data (eventsource.personal)
    "PostgreSQLNotAvailableError",
    "ProjectionError",
    "RabbitMQNotAvailableError",
    "RedisNotAvailableError",
    "SQLiteNotAvailableError",
    "SerializationError",
    "StoreNotConnectedError",
    "StreamTombstonedError",
    "SubjectErasedError",  # personal data (eventsource.personal)
    "TenantMismatchError",
    "TenantRequiredError",
    "TransferError",
    "TransferFileError",
    "TransformError",
    "UnhandledEventError",
    "UnknownSubjectError",  # personal data (eventsource.personal)
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


class CorruptEventError(EventStoreError):
    """A stored row could not be turned back into an event; names the event id and type, and,
    from reads, the row's global position.

    Reads raise it after handing over the readable events before the row, so a caller can
    choose what to do with the row and go on. `position` is the row's global position (None
    where a read does not select it), `payload` its payload as stored. `read_committed` also
    sets `page`, the readable events before the row with the cursor just before it, and
    `cursor`, the cursor just after the row: `read_committed(error.cursor)` reads on past it.
    """

    def __init__(
        self,
        event_id: object,
        event_type: str,
        reason: str,
        position: int | None = None,
        payload: object = None,
    ) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.reason = reason
        self.position = position
        self.payload = payload
        self.page: CommittedPage | None = None
        self.cursor: str | None = None
        at = "" if position is None else f" at global position {position}"
        super().__init__(
            f"Stored event {event_id} of type {event_type!r}{at} cannot be read: {reason}"
        )

    def resumable(self, page: CommittedPage, cursor: str) -> Self:
        """Set `page` and `cursor` (see the class); `read_committed` raises the result."""
        self.page = page
        self.cursor = cursor
        return self


class StoreNotConnectedError(EventStoreError, RuntimeError):
    """A durable store was used before `initialize()` / `async with`, or after `close()`."""


class StreamTombstonedError(EventStoreError):
    """The stream was hard-deleted (tombstoned, see docs/retention.md): every append to it and
    every read of it raise this, forever. `aggregate_id` / `aggregate_type` name it (None only
    while the driver's error is being mapped, before the store names the stream)."""

    def __init__(self, aggregate_id: UUID | None = None, aggregate_type: str | None = None) -> None:
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type
        stream = "a stream" if aggregate_id is None else f"stream {aggregate_id}:{aggregate_type}"
        super().__init__(
            f"{stream} is tombstoned (hard-deleted): it can never be read or appended to again"
        )


class DatabaseLockedError(EventStoreError):
    """Another connection kept the database's write lock for longer than the store waits for
    it (SQLite's `busy_timeout`); nothing was written."""


class DatabaseFileChangedError(EventStoreError):
    """The path of an open SQLite database no longer names the file the store opened (deleted,
    moved or replaced): a write would go to a file nobody can open again, so none is made."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"SQLite database {path!r} is no longer the file this store opened (it was "
            "deleted, moved or replaced): nothing was written; close the store and open the "
            "database again"
        )


class TenantRequiredError(EventSourceError):
    """Tenant-scoped code ran outside any `tenant_scope`."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "No tenant is bound: wrap the unit of work in eventsource.tenant_scope(...)"
        )


class TenantMismatchError(EventSourceError):
    """A write inside a `tenant_scope` touched data that is not the bound tenant's; nothing was
    written.

    Only the bound tenant is named: whom the data belongs to (another tenant, or none for data
    written outside any scope) stays hidden, so the error cannot tell one tenant which other
    tenant an aggregate or event id belongs to.
    """

    def __init__(self, bound_tenant: UUID, what: str) -> None:
        self.bound_tenant = bound_tenant
        self.what = what
        super().__init__(
            f"{what} belongs to another tenant, not to tenant {bound_tenant} that the unit of "
            "work is bound to; nothing was written"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.bound_tenant, self.what))


class EventBusError(EventSourceError):
    """An event bus failed."""


class InvalidHandlerError(EventBusError, TypeError):
    """Something that cannot handle an event was subscribed (a `TypeError`, as in
    eventsource-py 0.2.0)."""


class CheckpointError(EventSourceError):
    """A checkpoint could not be read or written."""


class SerializationError(EventSourceError):
    """An event could not be serialised, or a stored row could not be turned back into one."""

    def __init__(self, event_type: str | None, message: str, event_id: UUID | None = None) -> None:
        self.event_type = event_type
        self.event_id = event_id
        where = f" (event {event_id})" if event_id is not None else ""
        super().__init__(f"Cannot (de)serialise event type {event_type!r}{where}: {message}")


class MissingExtraError(ImportError):
    """Something needs a driver that is not installed; the message names the extra bringing it.

    The base of every `*NotAvailableError`, so one `except` clause covers them all.
    """

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{feature} needs {package}: pip install 'eventsource-py[{extra}]'")


class RedisNotAvailableError(MissingExtraError):
    """redis (redis-py >= 5) is not installed."""

    def __init__(self) -> None:
        super().__init__("The Redis event bus", "redis", "redis")


class SQLiteNotAvailableError(MissingExtraError):
    """aiosqlite is not installed (it is a dependency of the package, so the install is broken)."""

    def __init__(self) -> None:
        super().__init__("SQLite support", "aiosqlite", "sqlite")


class PostgreSQLNotAvailableError(MissingExtraError):
    """SQLAlchemy or asyncpg is not installed."""

    def __init__(self) -> None:
        super().__init__("PostgreSQL support", "SQLAlchemy and asyncpg", "postgresql")


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


class KafkaNotAvailableError(MissingExtraError):
    """aiokafka is not installed."""

    def __init__(self) -> None:
        super().__init__("The Kafka event bus", "aiokafka", "kafka")


class NATSNotAvailableError(MissingExtraError):
    """nats-py is not installed."""

    def __init__(self) -> None:
        super().__init__("The NATS event bus", "nats-py", "nats")


class RabbitMQNotAvailableError(MissingExtraError):
    """aio-pika is not installed."""

    def __init__(self) -> None:
        super().__init__("The RabbitMQ event bus", "aio-pika", "rabbitmq")


class TransferError(EventSourceError):
    """A copy, export or import of events (`eventsource.transfer`) could not go on; what was
    written before it is recorded as the job's progress, and a new run resumes from there."""


class TransformError(TransferError):
    """A copy's transform raised, or returned something that cannot be written, for one source
    event; names that event's id and global position. Nothing of its batch was written."""

    def __init__(self, event_id: UUID, position: int, reason: str) -> None:
        self.event_id = event_id
        self.position = position
        self.reason = reason
        super().__init__(
            f"the transform failed on event {event_id} at source position {position}: {reason}"
        )


class TransferFileError(TransferError):
    """A line of an export file is not an event as `export_jsonl` writes them; names the line."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}, line {line}: {reason}")
# -- personal data (eventsource.personal, docs/personal-data.md) ---------------------------------


class PersonalDataError(EventSourceError):
    """Personal data could not be protected or revealed; nothing was written."""


class PersonalDataDeclarationError(PersonalDataError, TypeError):
    """An event class marks personal data wrongly (a marked field but no subject id field, a
    marker naming an unknown subject, a replacement value the field's type refuses)."""


class KeyStoreUnavailableError(PersonalDataError):
    """Marked fields were to be encrypted or decrypted with no key store at hand (the store has
    no `PersonalData` attached): the append is refused rather than write plaintext."""


class SubjectErasedError(PersonalDataError):
    """An append carries personal data of a subject that was forgotten and not re-enrolled."""

    def __init__(self, subject_id: str) -> None:
        self.subject_id = subject_id
        super().__init__(
            f"Data subject {subject_id!r} was forgotten: its personal data cannot be written "
            "until it is re-enrolled (PersonalData.enrol); nothing was written"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.subject_id,))


class UnknownSubjectError(PersonalDataError, LookupError):
    """`forget` or `enrol` named a subject the key store has never seen."""

    def __init__(self, subject_id: str) -> None:
        self.subject_id = subject_id
        super().__init__(f"Data subject {subject_id!r} has no keys and was never forgotten")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.subject_id,))


class PersonalDataIntegrityError(PersonalDataError):
    """A stored ciphertext failed authentication: it was altered, or moved to another field,
    subject, event type or tenant."""
