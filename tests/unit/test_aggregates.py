"""AggregateRoot and DeclarativeAggregate (API.md §2, §15 items 6-10)."""

from __future__ import annotations

import logging
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

import eventsource.aggregates
import eventsource.aggregates.base
from eventsource import (
    AggregateRoot,
    DeclarativeAggregate,
    DomainEvent,
    EventVersionError,
    handles,
    register_event,
)
from eventsource.exceptions import UnhandledEventError


@register_event
class AggTaskCreated(DomainEvent):
    event_type: str = "AggTaskCreated"
    aggregate_type: str = "Task"
    title: str


@register_event
class AggTaskReassigned(DomainEvent):
    event_type: str = "AggTaskReassigned"
    aggregate_type: str = "Task"
    assignee: str


@register_event
class AggTaskCompleted(DomainEvent):
    event_type: str = "AggTaskCompleted"
    aggregate_type: str = "Task"


@register_event
class AggTaskArchived(DomainEvent):
    event_type: str = "AggTaskArchived"
    aggregate_type: str = "Task"


class TaskState(BaseModel):
    task_id: UUID
    title: str = ""
    assignee: str | None = None
    done: bool = False


class TaskAggregate(AggregateRoot[TaskState]):
    aggregate_type = "Task"

    def _get_initial_state(self) -> TaskState:
        return TaskState(task_id=self.aggregate_id)

    def _apply(self, event: DomainEvent) -> None:
        state = self._state or self._get_initial_state()
        if isinstance(event, AggTaskCreated):
            self._state = state.model_copy(update={"title": event.title})
        elif isinstance(event, AggTaskReassigned):
            self._state = state.model_copy(update={"assignee": event.assignee})
        elif isinstance(event, AggTaskCompleted):
            self._state = state.model_copy(update={"done": True})

    def create(self, title: str) -> None:
        self.apply_event(
            AggTaskCreated(
                aggregate_id=self.aggregate_id,
                title=title,
                aggregate_version=self.get_next_version(),
            )
        )

    def reassign(self, assignee: str) -> None:
        self.apply_event(
            AggTaskReassigned(
                aggregate_id=self.aggregate_id,
                assignee=assignee,
                aggregate_version=self.get_next_version(),
            )
        )

    def complete(self) -> None:
        self.apply_event(
            AggTaskCompleted(
                aggregate_id=self.aggregate_id, aggregate_version=self.get_next_version()
            )
        )


class LenientTask(TaskAggregate):
    validate_versions = False


class DeclarativeTask(DeclarativeAggregate[TaskState]):
    aggregate_type = "Task"

    def _get_initial_state(self) -> TaskState:
        return TaskState(task_id=self.aggregate_id)

    @handles(AggTaskCreated)
    def _on_created(self, event: AggTaskCreated) -> None:
        self._state = TaskState(task_id=self.aggregate_id, title=event.title)

    @handles(AggTaskCompleted)
    def _on_completed(self, event: AggTaskCompleted) -> None:
        assert self._state is not None
        self._state = self._state.model_copy(update={"done": True})


class ReassigningTask(DeclarativeTask):
    """Inherits both handlers and adds one."""

    @handles(AggTaskReassigned)
    def _on_reassigned(self, event: AggTaskReassigned) -> None:
        assert self._state is not None
        self._state = self._state.model_copy(update={"assignee": event.assignee})


class StrictTask(DeclarativeAggregate[TaskState]):
    unregistered_event_handling = "error"

    def _get_initial_state(self) -> TaskState:
        return TaskState(task_id=self.aggregate_id)

    @handles(AggTaskCreated)
    def _on_created(self, event: AggTaskCreated) -> None:
        self._state = TaskState(task_id=self.aggregate_id, title=event.title)


class WarningTask(StrictTask):
    unregistered_event_handling = "warn"


def history(task_id: UUID) -> list[DomainEvent]:
    return [
        AggTaskCreated(aggregate_id=task_id, title="T", aggregate_version=1),
        AggTaskReassigned(aggregate_id=task_id, assignee="bob", aggregate_version=2),
        AggTaskCompleted(aggregate_id=task_id, aggregate_version=3),
    ]


def test_fresh_aggregate() -> None:
    task_id = uuid4()
    task = TaskAggregate(task_id)
    assert (task.aggregate_id, task.version, task.state) == (task_id, 0, None)
    assert task.uncommitted_events == []
    assert not task.has_uncommitted_events
    assert task.get_next_version() == 1
    task.load_from_history([])
    assert (task.version, task.state) == (0, None)


def test_commands_add_versions_and_track_uncommitted_events() -> None:
    task = TaskAggregate(uuid4())
    task.create("Write tests")
    task.reassign("alice")
    task.complete()
    assert task.version == 3
    assert [f"{e.event_type} (v{e.aggregate_version})" for e in task.uncommitted_events] == [
        "AggTaskCreated (v1)",
        "AggTaskReassigned (v2)",
        "AggTaskCompleted (v3)",
    ]
    assert task.state == TaskState(
        task_id=task.aggregate_id, title="Write tests", assignee="alice", done=True
    )
    copy = task.uncommitted_events
    copy.clear()
    assert len(task.uncommitted_events) == 3  # the property returns a copy
    task.mark_events_as_committed()
    assert task.uncommitted_events == []
    assert task.version == 3


def test_clear_uncommitted_events_returns_them() -> None:
    task = TaskAggregate(uuid4())
    task.create("x")
    cleared = task.clear_uncommitted_events()
    assert [e.event_type for e in cleared] == ["AggTaskCreated"]
    assert not task.has_uncommitted_events


def test_load_from_history_rebuilds_state_without_tracking() -> None:
    task_id = uuid4()
    original = TaskAggregate(task_id)
    original.create("T")
    original.reassign("bob")
    original.complete()
    replayed = TaskAggregate(task_id)
    replayed.load_from_history(history(task_id))
    assert replayed.state == original.state
    assert replayed.version == 3
    assert replayed.uncommitted_events == []


def test_replay_takes_the_events_version_unvalidated() -> None:
    task_id = uuid4()
    task = TaskAggregate(task_id)
    task.load_from_history([AggTaskCreated(aggregate_id=task_id, title="T", aggregate_version=5)])
    assert task.version == 5


def test_wrong_version_raises_event_version_error() -> None:
    task_id = uuid4()
    task = TaskAggregate(task_id)
    task.create("T")
    event = AggTaskCompleted(aggregate_id=task_id, aggregate_version=5)
    with pytest.raises(EventVersionError) as caught:
        task.apply_event(event)
    error = caught.value
    assert (error.expected_version, error.actual_version) == (2, 5)
    assert (error.event_id, error.aggregate_id) == (event.event_id, task_id)
    assert task.version == 1
    assert len(task.uncommitted_events) == 1


def test_version_check_off_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    task_id = uuid4()
    task = LenientTask(task_id)
    with caplog.at_level(logging.WARNING, logger="eventsource.aggregates.base"):
        task.apply_event(AggTaskCreated(aggregate_id=task_id, title="T", aggregate_version=4))
    assert task.version == 4
    assert len(task.uncommitted_events) == 1
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_declarative_dispatch_with_inherited_handlers() -> None:
    task_id = uuid4()
    task = ReassigningTask(task_id)
    task.load_from_history(history(task_id))
    assert task.state == TaskState(task_id=task_id, title="T", assignee="bob", done=True)
    base_task = DeclarativeTask(task_id)
    base_task.load_from_history(history(task_id))  # "ignore": the reassignment is skipped
    assert base_task.state == TaskState(task_id=task_id, title="T", assignee=None, done=True)
    assert base_task.version == 3


def test_declarative_handlers_are_per_class() -> None:
    task_id = uuid4()
    base_task = DeclarativeTask(task_id)
    base_task.apply_event(AggTaskCreated(aggregate_id=task_id, title="T"))
    base_task.apply_event(
        AggTaskReassigned(aggregate_id=task_id, assignee="x", aggregate_version=2)
    )
    assert base_task.state is not None
    assert base_task.state.assignee is None


def test_error_mode_raises_unhandled_event_error() -> None:
    task_id = uuid4()
    task = StrictTask(task_id)
    task.apply_event(AggTaskCreated(aggregate_id=task_id, title="T"))
    archived = AggTaskArchived(aggregate_id=task_id, aggregate_version=2)
    with pytest.raises(UnhandledEventError) as caught:
        task.apply_event(archived)
    error = caught.value
    assert error.event_type == "AggTaskArchived"
    assert error.event_id == archived.event_id
    assert error.handler_class == "StrictTask"
    assert error.available_handlers == ["AggTaskCreated"]
    with pytest.raises(UnhandledEventError):
        StrictTask(task_id).load_from_history([archived])  # also for replayed events


def test_warn_mode_logs_and_continues(caplog: pytest.LogCaptureFixture) -> None:
    task_id = uuid4()
    task = WarningTask(task_id)
    with caplog.at_level(logging.WARNING, logger="eventsource.aggregates.base"):
        task.apply_event(AggTaskArchived(aggregate_id=task_id))
    assert task.version == 1
    assert "AggTaskArchived" in caplog.text


def test_ignore_mode_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    task_id = uuid4()
    task = DeclarativeTask(task_id)
    with caplog.at_level(logging.DEBUG):
        task.apply_event(AggTaskArchived(aggregate_id=task_id))
    assert task.version == 1
    assert caplog.records == []


def test_handles_returns_the_function_unchanged() -> None:
    def handler(self: object, event: DomainEvent) -> None: ...

    assert handles(AggTaskCreated)(handler) is handler
    assert handler._handles_event_type is AggTaskCreated  # type: ignore[attr-defined]


def test_snapshot_hooks() -> None:
    task_id = uuid4()
    task = TaskAggregate(task_id)
    assert task._serialize_state() == {}
    task.load_from_history(history(task_id))
    dumped = task._serialize_state()
    assert dumped == {"task_id": str(task_id), "title": "T", "assignee": "bob", "done": True}
    restored = TaskAggregate(task_id)
    restored._restore_from_snapshot(dumped, 1)
    assert restored.state == task.state
    assert restored.version == 0  # the repository sets the version
    empty = TaskAggregate(task_id)
    empty._restore_from_snapshot({}, schema_version=1)
    assert empty.state is None
    assert TaskAggregate._get_state_type() is TaskState


def test_identity_and_repr() -> None:
    task_id = uuid4()
    assert TaskAggregate(task_id) == TaskAggregate(task_id)
    assert TaskAggregate(task_id) != TaskAggregate(uuid4())
    assert len({TaskAggregate(task_id), TaskAggregate(task_id)}) == 1
    assert str(task_id) in repr(TaskAggregate(task_id))


def test_class_attribute_defaults_and_import_paths() -> None:
    class Bare(AggregateRoot[TaskState]):
        def _apply(self, event: DomainEvent) -> None: ...
        def _get_initial_state(self) -> TaskState:
            return TaskState(task_id=self.aggregate_id)

    assert (Bare.aggregate_type, Bare.schema_version, Bare.validate_versions) == (
        "Unknown",
        1,
        True,
    )
    assert DeclarativeAggregate.unregistered_event_handling == "ignore"
    for module in (eventsource.aggregates, eventsource.aggregates.base):
        assert module.AggregateRoot is AggregateRoot
        assert module.DeclarativeAggregate is DeclarativeAggregate
