"""Contract every dead-letter repository satisfies. Subclass and provide a
`dlq_repo` fixture."""

from __future__ import annotations

from uuid import UUID, uuid4

from eventsource.repositories.dlq import DLQRepository


def _raised(message: str) -> ValueError:
    try:
        raise ValueError(message)  # noqa: TRY301 - a raised error carries a traceback
    except ValueError as exc:
        return exc


async def _add(
    repo: DLQRepository,
    projection: str = "P",
    event_id: UUID | None = None,
    message: str = "broken",
    retry_count: int = 3,
) -> UUID:
    event_id = event_id or uuid4()
    await repo.add_failed_event(
        event_id=event_id,
        projection_name=projection,
        event_type="TaskCreated",
        event_data={"title": "x", "event_id": str(event_id)},
        error=_raised(message),
        retry_count=retry_count,
    )
    return event_id


class DLQRepositoryContract:
    """Backend-agnostic dead-letter behaviour."""

    async def test_first_failure_gets_id_one_and_full_details(
        self, dlq_repo: DLQRepository
    ) -> None:
        event_id = await _add(dlq_repo)
        stats = await dlq_repo.get_failure_stats()
        assert (stats.total_failed, stats.total_retrying, stats.affected_projections) == (1, 0, 1)
        assert stats.oldest_failure is not None
        [entry] = await dlq_repo.get_failed_events()
        assert str(entry.id) == "1"
        assert entry.event_id == event_id
        assert (entry.projection_name, entry.event_type) == ("P", "TaskCreated")
        assert (entry.error_message, entry.retry_count, entry.status) == ("broken", 3, "failed")
        assert entry.error_stacktrace is not None
        assert "ValueError" in entry.error_stacktrace
        assert entry.first_failed_at is not None

    async def test_same_event_and_projection_updates_the_row(self, dlq_repo: DLQRepository) -> None:
        event_id = await _add(dlq_repo)
        await _add(dlq_repo, event_id=event_id, message="again", retry_count=5)
        [entry] = await dlq_repo.get_failed_events()
        assert (entry.error_message, entry.retry_count) == ("again", 5)
        await _add(dlq_repo, projection="Other", event_id=event_id)
        assert len(await dlq_repo.get_failed_events()) == 2

    async def test_newest_first_filtered_and_limited(self, dlq_repo: DLQRepository) -> None:
        ids = [await _add(dlq_repo) for _ in range(3)]
        await _add(dlq_repo, projection="Q")
        newest_first = [e.event_id for e in await dlq_repo.get_failed_events(projection_name="P")]
        assert newest_first == list(reversed(ids))
        assert len(await dlq_repo.get_failed_events(limit=2)) == 2

    async def test_resolve_retry_and_cleanup(self, dlq_repo: DLQRepository) -> None:
        await _add(dlq_repo)
        await _add(dlq_repo)
        [second, first] = await dlq_repo.get_failed_events()
        await dlq_repo.mark_resolved(dlq_id=first.id, resolved_by="admin")
        await dlq_repo.mark_retrying(second.id)
        assert await dlq_repo.get_failed_events() == []
        assert [e.id for e in await dlq_repo.get_failed_events(status="retrying")] == [second.id]
        resolved = await dlq_repo.get_failed_event_by_id(first.id)
        assert resolved is not None
        assert (resolved.status, resolved.resolved_by) == ("resolved", "admin")
        assert resolved.resolved_at is not None
        stats = await dlq_repo.get_failure_stats()
        assert (stats.total_failed, stats.total_retrying) == (0, 1)
        assert await dlq_repo.delete_resolved_events(older_than_days=30) == 0
        assert await dlq_repo.delete_resolved_events(older_than_days=0) == 1
        assert await dlq_repo.get_failed_event_by_id(first.id) is None

    async def test_failure_counts_per_projection(self, dlq_repo: DLQRepository) -> None:
        for _ in range(2):
            await _add(dlq_repo, projection="A")
        await _add(dlq_repo, projection="B")
        counts = await dlq_repo.get_projection_failure_counts()
        assert [(c.projection_name, c.failure_count) for c in counts] == [("A", 2), ("B", 1)]
        assert counts[0].oldest_failure is not None
        assert counts[0].most_recent_failure is not None
