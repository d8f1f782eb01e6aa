"""Rebuilding a projection from position 0 with progress reports and batched checkpoints."""

from __future__ import annotations

from uuid import UUID, uuid4

from eventsource import (
    DeclarativeProjection,
    DomainEvent,
    InMemoryCheckpointRepository,
    InMemoryEventStore,
    handles,
    register_event,
)
from eventsource.subscriptions import RebuildProgress, rebuild_projection


@register_event
class Counted(DomainEvent):
    event_type: str = "RebuildCounted"
    aggregate_type: str = "RebuildCounter"


@register_event
class Other(DomainEvent):
    event_type: str = "RebuildOther"
    aggregate_type: str = "RebuildCounter"


class CountingCheckpoints(InMemoryCheckpointRepository):
    def __init__(self) -> None:
        super().__init__(enable_tracing=False)
        self.position_saves = 0
        self.event_updates = 0

    async def save_position(self, *args: object, **kwargs: object) -> None:
        self.position_saves += 1
        await super().save_position(*args, **kwargs)  # type: ignore[arg-type]

    async def update_checkpoint(self, *args: object, **kwargs: object) -> None:
        self.event_updates += 1
        await super().update_checkpoint(*args, **kwargs)  # type: ignore[arg-type]


class Tally(DeclarativeProjection):
    def __init__(self, repo: InMemoryCheckpointRepository) -> None:
        super().__init__(checkpoint_repo=repo)
        self.seen: dict[UUID, int] = {}
        self.resets = 0

    @handles(Counted)
    async def _counted(self, event: Counted) -> None:
        self.seen[event.event_id] = self.seen.get(event.event_id, 0) + 1

    async def _truncate_read_models(self) -> None:
        self.seen.clear()
        self.resets += 1


async def _fill(store: InMemoryEventStore, streams: int, per_stream: int) -> None:
    for _ in range(streams):
        aggregate = uuid4()
        events: list[DomainEvent] = [
            (Counted if i % 4 else Other)(aggregate_id=aggregate, aggregate_version=i + 1)
            for i in range(per_stream)
        ]
        await store.append_events(aggregate, "RebuildCounter", events, 0)


async def test_rebuild_replays_everything_once_and_reports_progress() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    await _fill(store, streams=50, per_stream=100)
    repo = CountingCheckpoints()
    projection = Tally(repo)
    reports: list[RebuildProgress] = []
    final = await rebuild_projection(
        projection, store, batch_size=500, on_progress=reports.append, progress_interval=0.0
    )
    counted = 50 * 75
    assert len(projection.seen) == counted
    assert set(projection.seen.values()) == {1}
    assert projection.resets == 1
    assert (final.events_total, final.events_read, final.events_handled) == (5000, 5000, counted)
    assert final.fraction == 1.0
    assert reports[-1] == final
    reads = [r.events_read for r in reports]
    assert reads == sorted(reads)
    # Checkpoints per page (5,000 events / 500), not per event.
    assert 1 <= repo.position_saves <= 5000 // 500 + 2
    assert repo.event_updates == 0
    data = await repo.get_checkpoint_data(projection_name="Tally")
    assert data is not None
    assert data.global_position == 5000

    again = await rebuild_projection(projection, store, batch_size=500)
    assert projection.resets == 2
    assert set(projection.seen.values()) == {1}
    assert again.events_handled == counted


async def test_rebuild_of_an_empty_store_is_complete() -> None:
    store = InMemoryEventStore(enable_tracing=False)
    progress = await rebuild_projection(Tally(CountingCheckpoints()), store)
    assert progress.fraction == 1.0
    assert progress.events_total == 0
