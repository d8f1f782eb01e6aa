"""The exception hierarchy: bases, constructor attributes and messages (API.md §14)."""

from __future__ import annotations

import pickle
from uuid import uuid4

import pytest

import eventsource
import eventsource.exceptions as exceptions
from eventsource.exceptions import (
    AggregateNotFoundError,
    CheckpointError,
    DuplicateEventTypeError,
    EventBusError,
    EventNotFoundError,
    EventSourceError,
    EventStoreError,
    EventTypeNotFoundError,
    EventVersionError,
    OptimisticLockError,
    ProjectionError,
    SerializationError,
    UnhandledEventError,
)


@pytest.mark.parametrize(
    ("error", "base"),
    [
        (OptimisticLockError, EventSourceError),
        (AggregateNotFoundError, EventSourceError),
        (EventNotFoundError, EventSourceError),
        (EventVersionError, EventSourceError),
        (UnhandledEventError, EventSourceError),
        (ProjectionError, EventSourceError),
        (EventStoreError, EventSourceError),
        (EventBusError, EventSourceError),
        (CheckpointError, EventSourceError),
        (SerializationError, EventSourceError),
        (EventSourceError, Exception),
        (EventTypeNotFoundError, KeyError),
        (DuplicateEventTypeError, ValueError),
    ],
)
def test_bases(error: type[BaseException], base: type[BaseException]) -> None:
    assert issubclass(error, base)


def test_optimistic_lock_error() -> None:
    aggregate_id = uuid4()
    error = OptimisticLockError(aggregate_id, 1, 2)
    assert (error.aggregate_id, error.expected_version, error.actual_version) == (
        aggregate_id,
        1,
        2,
    )
    assert str(error) == (
        f"Optimistic lock error for aggregate {aggregate_id}: expected version 1, "
        "but current version is 2"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.aggregate_id, copy.expected_version, copy.actual_version) == (aggregate_id, 1, 2)


def test_aggregate_not_found_error() -> None:
    aggregate_id = uuid4()
    typed = AggregateNotFoundError(aggregate_id, "Task")
    assert (typed.aggregate_id, typed.aggregate_type) == (aggregate_id, "Task")
    assert str(typed) == f"Aggregate of type Task not found: {aggregate_id}"
    untyped = AggregateNotFoundError(aggregate_id)
    assert untyped.aggregate_type is None
    assert str(untyped) == f"Aggregate not found: {aggregate_id}"
    assert pickle.loads(pickle.dumps(typed)).aggregate_type == "Task"


def test_event_not_found_and_version_errors() -> None:
    event_id, aggregate_id = uuid4(), uuid4()
    assert EventNotFoundError(event_id).event_id == event_id
    assert str(event_id) in str(EventNotFoundError(event_id))
    error = EventVersionError(
        expected_version=2, actual_version=5, event_id=event_id, aggregate_id=aggregate_id
    )
    assert (error.expected_version, error.actual_version) == (2, 5)
    assert (error.event_id, error.aggregate_id) == (event_id, aggregate_id)
    assert str(aggregate_id) in str(error)


def test_unhandled_event_error() -> None:
    event_id = uuid4()
    error = UnhandledEventError("TaskArchived", event_id, "TaskAggregate", ["TaskCreated"])
    assert (error.event_type, error.event_id, error.handler_class, error.available_handlers) == (
        "TaskArchived",
        event_id,
        "TaskAggregate",
        ["TaskCreated"],
    )
    assert "TaskArchived" in str(error)
    assert "TaskAggregate" in str(error)


def test_projection_error() -> None:
    event_id = uuid4()
    error = ProjectionError("TaskList", event_id, "boom")
    assert (error.projection_name, error.event_id) == ("TaskList", event_id)
    assert str(error) == f"Projection TaskList failed on event {event_id}: boom"


def test_serialization_error() -> None:
    error = SerializationError("TaskCreated", "not JSON")
    assert error.event_type == "TaskCreated"
    assert "TaskCreated" in str(error)
    assert "not JSON" in str(error)


def test_registry_errors() -> None:
    missing = EventTypeNotFoundError("Nope", ["A", "B"])
    assert (missing.event_type, missing.available_types) == ("Nope", ["A", "B"])
    assert "Nope" in str(missing)
    duplicate = DuplicateEventTypeError("X", int, str)
    assert (duplicate.event_type, duplicate.existing_class, duplicate.new_class) == ("X", int, str)


def test_import_paths() -> None:
    for name in (
        "EventSourceError",
        "OptimisticLockError",
        "AggregateNotFoundError",
        "EventNotFoundError",
        "EventVersionError",
        "ProjectionError",
        "EventTypeNotFoundError",
        "DuplicateEventTypeError",
    ):
        assert getattr(eventsource, name) is getattr(exceptions, name)
    for name in (
        "EventStoreError",
        "EventBusError",
        "CheckpointError",
        "SerializationError",
        "UnhandledEventError",
    ):
        assert hasattr(exceptions, name)


def test_snapshot_errors() -> None:
    # GAP (core): §14 lists these; eventsource.snapshots does not define them yet.
    import eventsource.snapshots as snapshots

    aggregate_id = uuid4()
    base = snapshots.SnapshotError
    assert issubclass(base, EventSourceError)
    cause = ValueError("bad json")
    broken = snapshots.SnapshotDeserializationError(
        aggregate_id, "Task", original_error=cause
    )
    assert isinstance(broken, base)
    assert (broken.aggregate_id, broken.aggregate_type, broken.original_error) == (
        aggregate_id,
        "Task",
        cause,
    )
    assert isinstance(broken.message, str)
    schema = snapshots.SnapshotSchemaVersionError(aggregate_id, "Task", 1, 2)
    assert (schema.snapshot_schema_version, schema.expected_schema_version) == (1, 2)
    missing = snapshots.SnapshotNotFoundError(aggregate_id, "Task")
    assert (missing.aggregate_id, missing.aggregate_type) == (aggregate_id, "Task")
    for name in (
        "SnapshotError",
        "SnapshotDeserializationError",
        "SnapshotSchemaVersionError",
        "SnapshotNotFoundError",
    ):
        assert getattr(eventsource, name) is getattr(snapshots, name)


def test_snapshot_and_subscription_errors_are_library_errors() -> None:
    """Both families sit under `EventSourceError` and keep their own bases for old clauses."""
    import eventsource.snapshots as snapshots
    import eventsource.subscriptions as subscriptions

    families = {
        snapshots.SnapshotError: (
            snapshots.SnapshotDeserializationError(uuid4(), "Task"),
            snapshots.SnapshotSchemaVersionError(uuid4(), "Task", 1, 2),
            snapshots.SnapshotNotFoundError(uuid4(), "Task"),
        ),
        subscriptions.SubscriptionError: (
            subscriptions.SubscriptionConfigError("bad"),
            subscriptions.SubscriptionStateError("bad"),
            subscriptions.TransitionError("bad"),
            subscriptions.EventStoreConnectionError("down"),
            subscriptions.EventBusConnectionError("down"),
            subscriptions.SubscriptionAlreadyExistsError("dashboard"),
            subscriptions.CheckpointNotFoundError("dashboard"),
        ),
    }
    for base, errors in families.items():
        for error in errors:
            for clause in (base, EventSourceError, Exception):
                with pytest.raises(clause) as caught:
                    raise error
                assert caught.value is error
    assert issubclass(subscriptions.TransitionError, subscriptions.SubscriptionStateError)


async def test_a_refused_subscription_is_caught_as_a_library_error() -> None:
    """What the manager raises reaches an `except EventSourceError` handler."""
    from eventsource import InMemoryCheckpointRepository, InMemoryEventBus, InMemoryEventStore
    from eventsource.projections import DeclarativeProjection
    from eventsource.subscriptions import SubscriptionAlreadyExistsError, SubscriptionManager

    class Dashboard(DeclarativeProjection):
        pass

    manager = SubscriptionManager(
        InMemoryEventStore(enable_tracing=False),
        InMemoryEventBus(enable_tracing=False),
        InMemoryCheckpointRepository(enable_tracing=False),
        enable_tracing=False,
    )
    await manager.subscribe(Dashboard(), name="dashboard")
    with pytest.raises(EventSourceError) as caught:
        await manager.subscribe(Dashboard(), name="dashboard")
    assert isinstance(caught.value, SubscriptionAlreadyExistsError)
    assert caught.value.name == "dashboard"
