"""Projections, checkpoints, DLQ and retry policies (API.md §5, §15 items 30-34)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from eventsource import (
    DeclarativeProjection,
    DomainEvent,
    InMemoryCheckpointRepository,
    InMemoryDLQRepository,
    ProjectionError,
    handles,
)
from eventsource.exceptions import UnhandledEventError
from eventsource.projections.dlq_manager import ProjectionDLQManager
from eventsource.projections.retry import (
    ExponentialBackoffRetryPolicy,
    FilteredRetryPolicy,
    NoRetryPolicy,
)
from eventsource.subscriptions.retry import TRANSIENT_EXCEPTIONS, RetryConfig, calculate_backoff


class TaskCreated(DomainEvent):
    event_type: str = "TaskCreated"
    aggregate_type: str = "Task"
    title: str = "t"


class TaskCompleted(DomainEvent):
    event_type: str = "TaskCompleted"
    aggregate_type: str = "Task"


class TaskReassigned(DomainEvent):
    event_type: str = "TaskReassigned"
    aggregate_type: str = "Task"


class TaskArchived(DomainEvent):
    event_type: str = "TaskArchived"
    aggregate_type: str = "Task"


class TaskList(DeclarativeProjection):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.tasks: dict[UUID, str] = {}
        self.truncated = 0

    @handles(TaskCreated)
    async def _created(self, event: TaskCreated) -> None:
        self.tasks[event.aggregate_id] = "open"

    @handles(TaskCompleted)
    async def _completed(self, conn: object, event: TaskCompleted) -> None:
        assert conn is None
        self.tasks[event.aggregate_id] = "done"

    @handles(TaskReassigned)
    async def _a_reassigned(self, event: TaskReassigned) -> None:
        return None

    async def _truncate_read_models(self) -> None:
        self.tasks.clear()
        self.truncated += 1


class Flaky(DeclarativeProjection):
    def __init__(self, failures: int, error: Exception, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.failures = failures
        self.error = error
        self.attempts = 0

    @handles(TaskCreated)
    async def _created(self, event: TaskCreated) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error


def created() -> TaskCreated:
    return TaskCreated(aggregate_id=uuid4())


def test_subscribed_to_keeps_declaration_order() -> None:
    assert TaskList().subscribed_to() == [TaskCreated, TaskCompleted, TaskReassigned]


async def test_handles_checkpoints_and_reset() -> None:
    repo = InMemoryCheckpointRepository()
    projection = TaskList(checkpoint_repo=repo)
    first, second = created(), TaskCompleted(aggregate_id=uuid4())
    await projection.handle(first)
    await projection.handle(second)
    assert await projection.get_checkpoint() == str(second.event_id)
    assert TaskList(checkpoint_repo=repo).projection_name == "TaskList"
    assert await TaskList(checkpoint_repo=repo).get_checkpoint() == str(second.event_id)
    await projection.reset()
    assert await projection.get_checkpoint() is None
    assert projection.tasks == {}
    assert projection.truncated == 1


async def test_lag_metrics_in_memory() -> None:
    projection = TaskList()
    assert await projection.get_lag_metrics() is None
    for _ in range(5):
        await projection.handle(created())
    metrics = await projection.get_lag_metrics()
    assert metrics is not None
    assert metrics["projection_name"] == "TaskList"
    assert metrics["events_processed"] == 5
    assert metrics["lag_seconds"] == 0.0
    assert isinstance(metrics["last_processed_at"], str)
    assert "T" in metrics["last_processed_at"]


async def test_retries_then_succeeds_without_dead_letter() -> None:
    dlq = InMemoryDLQRepository()
    policy = ExponentialBackoffRetryPolicy(
        RetryConfig(max_retries=2, initial_delay=0.001, max_delay=0.01, jitter=0.0)
    )
    projection = Flaky(2, ConnectionError("db down"), dlq_repo=dlq, retry_policy=policy)
    await projection.handle(created())
    assert projection.attempts == 3
    assert (await dlq.get_failure_stats()).total_failed == 0


async def test_gives_up_dead_letters_and_raises_chained_projection_error() -> None:
    dlq = InMemoryDLQRepository()
    projection = Flaky(10, ValueError("bad data"), dlq_repo=dlq, retry_policy=NoRetryPolicy())
    event = created()
    with pytest.raises(ProjectionError) as caught:
        await projection.handle(event)
    assert caught.value.projection_name == "Flaky"
    assert caught.value.event_id == event.event_id
    assert isinstance(caught.value.__cause__, ValueError)
    assert str(caught.value).startswith(f"Projection Flaky failed on event {event.event_id}: ")
    entries = await dlq.get_failed_events()
    assert [(e.event_id, e.retry_count, e.error_message) for e in entries] == [
        (event.event_id, 1, "bad data")
    ]
    assert await projection.get_checkpoint() is None


async def test_legacy_class_attributes_give_three_attempts() -> None:
    class Legacy(Flaky):
        RETRY_BACKOFF_BASE = 0

    projection = Legacy(10, RuntimeError("nope"))
    with pytest.raises(ProjectionError):
        await projection.handle(created())
    assert projection.attempts == 3


async def test_strict_projection_rejects_unhandled_events() -> None:
    class Strict(TaskList):
        unregistered_event_handling = "error"

    with pytest.raises(ProjectionError) as caught:
        await Strict(retry_policy=NoRetryPolicy()).handle(TaskArchived(aggregate_id=uuid4()))
    cause = caught.value.__cause__
    assert isinstance(cause, UnhandledEventError)
    assert cause.event_type == "TaskArchived"
    assert cause.available_handlers == ["TaskCreated", "TaskCompleted", "TaskReassigned"]


def test_bad_handlers_are_rejected_at_instantiation() -> None:
    class SyncHandler(DeclarativeProjection):
        @handles(TaskCreated)
        def _created(self, event: TaskCreated) -> None:
            return None

    class TooMany(DeclarativeProjection):
        @handles(TaskCreated)
        async def _created(self, a: object, b: object, event: TaskCreated) -> None:
            return None

    with pytest.raises(ValueError, match="async"):
        SyncHandler()
    with pytest.raises(ValueError, match="parameters"):
        TooMany()


async def test_dlq_repository_contract_in_memory() -> None:
    dlq = InMemoryDLQRepository()
    event = created()
    await dlq.add_failed_event(
        event_id=event.event_id, projection_name="P", event_type="TaskCreated",
        event_data=event.model_dump(mode="json"), error=ValueError("broken"), retry_count=3,
    )
    stats = await dlq.get_failure_stats()
    assert (stats.total_failed, stats.affected_projections) == (1, 1)
    [entry] = await dlq.get_failed_events()
    assert (entry.id, entry.error_message, entry.retry_count) == (1, "broken", 3)
    await dlq.add_failed_event(
        event_id=event.event_id, projection_name="P", event_type="TaskCreated",
        event_data={}, error=ValueError("again"), retry_count=4,
    )
    [entry] = await dlq.get_failed_events()
    assert (entry.id, entry.error_message, entry.retry_count) == (1, "again", 4)
    await dlq.mark_resolved(dlq_id=1, resolved_by="admin")
    assert await dlq.get_failed_events() == []
    resolved = await dlq.get_failed_event_by_id(1)
    assert resolved is not None
    assert (resolved.status, resolved.resolved_by) == ("resolved", "admin")
    assert await dlq.delete_resolved_events(older_than_days=0) == 1


async def test_dlq_manager_sends_and_lists() -> None:
    manager = ProjectionDLQManager("P")
    event = created()
    assert await manager.send_to_dlq(event, ValueError("x"), retry_count=2) is True
    [entry] = await manager.get_failed_events()
    assert entry.event_data == event.model_dump(mode="json")


def test_retry_policies() -> None:
    assert NoRetryPolicy().max_retries == 0
    assert NoRetryPolicy().should_retry(0, ValueError()) is False
    filtered = FilteredRetryPolicy(ExponentialBackoffRetryPolicy(), TRANSIENT_EXCEPTIONS)
    assert filtered.should_retry(0, ConnectionError()) is True
    assert filtered.should_retry(0, ValueError()) is False
    policy = ExponentialBackoffRetryPolicy()
    assert policy.max_retries == 3
    assert policy.get_backoff(0) == 2.0
    assert [policy.get_backoff(n) for n in range(3)] == [2.0, 4.0, 8.0]
    assert policy.should_retry(2, ValueError()) is True
    assert policy.should_retry(3, ValueError()) is False


def test_retry_config_validation_and_jitter_bounds() -> None:
    for bad in (
        {"max_retries": -1}, {"initial_delay": 0}, {"max_delay": 0.5},
        {"exponential_base": 1.0}, {"jitter": 1.5},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RetryConfig(**bad)
    config = RetryConfig(initial_delay=1.0, jitter=0.5, max_delay=8.0)
    for attempt in range(6):
        base = min(2.0**attempt, 8.0)
        assert base * 0.5 <= calculate_backoff(attempt, config) <= base * 1.5


def test_an_unannotated_handler_is_not_reported_as_misannotated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Plain(DeclarativeProjection):
        @handles(TaskCreated)
        async def _created(self, event):  # type: ignore[no-untyped-def]  # the case under test
            pass

    with caplog.at_level("WARNING"):
        Plain()
    assert "annotated" not in caplog.text
