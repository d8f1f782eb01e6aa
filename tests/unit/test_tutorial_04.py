"""Tutorial 4 (event stores): every behaviour its text promises, re-done in test code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from eventsource import (
    DomainEvent,
    EventStream,
    ExpectedVersion,
    InMemoryEventStore,
    OptimisticLockError,
    register_event,
)


@register_event
class TaskCreated(DomainEvent):
    event_type: str = "TaskCreated"
    aggregate_type: str = "Task"
    title: str
    description: str = ""


@register_event
class TaskCompleted(DomainEvent):
    event_type: str = "TaskCompleted"
    aggregate_type: str = "Task"
    completed_by: UUID


@register_event
class TaskUpdated(DomainEvent):
    event_type: str = "TaskUpdated"
    aggregate_type: str = "Task"
    new_title: str


def created(task_id: UUID, version: int = 1, **kw: object) -> TaskCreated:
    return TaskCreated(aggregate_id=task_id, title="Task", aggregate_version=version, **kw)


def completed(task_id: UUID, version: int) -> TaskCompleted:
    return TaskCompleted(aggregate_id=task_id, completed_by=uuid4(), aggregate_version=version)


async def test_basic_usage() -> None:
    store = InMemoryEventStore()
    task_id = uuid4()
    result = await store.append_events(
        aggregate_id=task_id, aggregate_type="Task", events=[created(task_id)], expected_version=0
    )
    assert (result.success, result.new_version, result.global_position) == (True, 1, 1)
    stream = await store.get_events(task_id, "Task")
    assert (stream.aggregate_id, stream.aggregate_type, stream.version) == (task_id, "Task", 1)
    assert stream.is_empty is False
    result = await store.append_events(task_id, "Task", [completed(task_id, 2)], 1)
    assert (result.new_version, result.global_position) == (2, 2)
    stream = await store.get_events(task_id, "Task")
    lines = [
        f"{i + 1}. {e.event_type} (v{e.aggregate_version})" for i, e in enumerate(stream.events)
    ]
    assert lines == ["1. TaskCreated (v1)", "2. TaskCompleted (v2)"]


async def test_reading_back() -> None:
    store = InMemoryEventStore()
    task_id = uuid4()
    event = created(task_id, description="A task")
    await store.append_events(task_id, "Task", [event], 0)
    stream = await store.get_events(task_id, "Task")
    assert isinstance(stream, EventStream)
    assert (stream.aggregate_id, stream.aggregate_type, stream.version) == (task_id, "Task", 1)
    assert [f"{e.event_type} (v{e.aggregate_version})" for e in stream.events] == [
        "TaskCreated (v1)"
    ]
    assert stream.latest_event is event


async def test_filtering_by_version() -> None:
    store = InMemoryEventStore()
    task_id = uuid4()
    events: list[DomainEvent] = [created(task_id)]
    events += [
        TaskUpdated(aggregate_id=task_id, new_title=f"t{v}", aggregate_version=v)
        for v in range(2, 8)
    ]
    await store.append_events(task_id, "Task", events, 0)
    stream = await store.get_events(aggregate_id=task_id, aggregate_type="Task", from_version=5)
    assert [e.aggregate_version for e in stream.events] == [6, 7]  # the first five are skipped


async def test_filtering_by_time() -> None:
    store = InMemoryEventStore()
    task_id = uuid4()
    old = created(task_id, occurred_at=datetime.now(UTC) - timedelta(hours=3))
    recent = TaskUpdated(aggregate_id=task_id, new_title="new", aggregate_version=2)
    await store.append_events(task_id, "Task", [old, recent], 0)
    one_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    stream = await store.get_events(
        aggregate_id=task_id, aggregate_type="Task", from_timestamp=one_hour_ago
    )
    assert stream.events == [recent]


async def test_conflict_demo() -> None:
    store = InMemoryEventStore()
    task_id = uuid4()
    await store.append_events(task_id, "Task", [created(task_id)], 0)
    await store.append_events(task_id, "Task", [completed(task_id, 2)], 1)  # user A
    with pytest.raises(OptimisticLockError) as caught:  # user B, stale
        await store.append_events(task_id, "Task", [completed(task_id, 2)], 1)
    error = caught.value
    assert (error.expected_version, error.actual_version, error.aggregate_id) == (1, 2, task_id)
    assert await store.get_stream_version(task_id, "Task") == 2


async def test_expected_version_demo() -> None:
    assert (ExpectedVersion.NO_STREAM, ExpectedVersion.ANY, ExpectedVersion.STREAM_EXISTS) == (
        0,
        -1,
        -2,
    )
    store = InMemoryEventStore()
    task_id = uuid4()
    result = await store.append_events(
        task_id, "Task", [created(task_id)], ExpectedVersion.NO_STREAM
    )
    assert (result.success, result.new_version) == (True, 1)
    with pytest.raises(OptimisticLockError):  # NO_STREAM again: the aggregate exists
        await store.append_events(task_id, "Task", [created(task_id)], ExpectedVersion.NO_STREAM)
    result = await store.append_events(
        task_id, "Task", [completed(task_id, 2)], ExpectedVersion.ANY
    )
    assert (result.success, result.new_version) == (True, 2)
    another_task = uuid4()
    with pytest.raises(OptimisticLockError) as caught:
        await store.append_events(
            another_task, "Task", [completed(another_task, 1)], ExpectedVersion.STREAM_EXISTS
        )
    assert (caught.value.expected_version, caught.value.actual_version) == (-2, 0)
    assert await store.get_stream_version(another_task, "Task") == 0


class InterferingStore(InMemoryEventStore):
    """Another writer appends right after each of the first `conflicts` reads."""

    def __init__(self, conflicts: int) -> None:
        super().__init__()
        self.conflicts = conflicts

    async def get_events(self, *args: object, **kwargs: object) -> EventStream:
        stream = await super().get_events(*args, **kwargs)  # type: ignore[arg-type]
        if self.conflicts > 0:
            self.conflicts -= 1
            task_id = stream.aggregate_id
            await self.append_events(
                task_id,
                "Task",
                [TaskUpdated(aggregate_id=task_id, new_title="other")],
                ExpectedVersion.ANY,
            )
        return stream


async def complete_task_with_retry(
    store: InMemoryEventStore, task_id: UUID, completed_by: UUID, max_retries: int = 3
) -> bool:
    """The tutorial's retry helper, as written there."""
    for attempt in range(max_retries):
        try:
            stream = await store.get_events(task_id, "Task")
            current_version = stream.version
            await store.append_events(
                aggregate_id=task_id,
                aggregate_type="Task",
                events=[
                    TaskCompleted(
                        aggregate_id=task_id,
                        completed_by=completed_by,
                        aggregate_version=current_version + 1,
                    )
                ],
                expected_version=current_version,
            )
        except OptimisticLockError:
            print(f"Conflict on attempt {attempt + 1}, retrying...")
            continue
        print(f"Task completed on attempt {attempt + 1}")
        return True
    print("Failed after max retries")
    return False


async def test_retry_helper_succeeds_after_a_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    store = InterferingStore(conflicts=1)
    task_id, user_id = uuid4(), uuid4()
    await store.append_events(task_id, "Task", [created(task_id)], 0)
    assert await complete_task_with_retry(store, task_id, user_id) is True
    assert capsys.readouterr().out.splitlines() == [
        "Conflict on attempt 1, retrying...",
        "Task completed on attempt 2",
    ]
    stream = await store.get_events(task_id, "Task")
    assert [e.event_type for e in stream.events] == ["TaskCreated", "TaskUpdated", "TaskCompleted"]
    assert stream.events[-1].aggregate_version == 3
    assert isinstance(stream.events[-1], TaskCompleted)
    assert stream.events[-1].completed_by == user_id


async def test_retry_helper_gives_up(capsys: pytest.CaptureFixture[str]) -> None:
    store = InterferingStore(conflicts=10)
    task_id = uuid4()
    await store.append_events(task_id, "Task", [created(task_id)], 0)
    assert await complete_task_with_retry(store, task_id, uuid4()) is False
    assert capsys.readouterr().out.splitlines()[-1] == "Failed after max retries"
    assert all(e.event_type != "TaskCompleted" for e in (await store.get_events(task_id)).events)


async def test_exercise_retry_with_the_actual_version() -> None:
    store = InMemoryEventStore()
    task_id = uuid4()
    await store.append_events(task_id, "Task", [created(task_id)], 0)
    assert (await store.get_events(task_id, "Task")).version == 1
    update = TaskUpdated(aggregate_id=task_id, new_title="Updated", aggregate_version=2)
    with pytest.raises(OptimisticLockError) as caught:
        await store.append_events(task_id, "Task", [update], expected_version=0)
    actual = caught.value.actual_version
    assert (caught.value.expected_version, actual) == (0, 1)
    retry = TaskUpdated(aggregate_id=task_id, new_title="Updated", aggregate_version=actual + 1)
    result = await store.append_events(task_id, "Task", [retry], expected_version=actual)
    assert result.new_version == 2
    final = await store.get_events(task_id, "Task")
    assert [e.event_type for e in final.events] == ["TaskCreated", "TaskUpdated"]


async def test_stream_and_global_positions() -> None:
    store = InMemoryEventStore()
    assert await store.get_global_position() == 0
    order, task = uuid4(), uuid4()
    await store.append_events(order, "Order", [created(order)], 0)
    await store.append_events(task, "Task", [created(task)], 0)
    await store.append_events(order, "Order", [completed(order, 2)], 1)
    stored = (await store.read_all()).events
    assert [(s.aggregate_id, s.stream_position, s.global_position) for s in stored] == [
        (order, 1, 1),
        (task, 1, 2),
        (order, 2, 3),
    ]
    assert await store.get_global_position() == 3
    assert await store.event_exists(stored[0].event_id)
    assert await store.get_stream_version(order, "Order") == 2
    assert len(await store.get_events_by_type("Order")) == 2
