"""Contract every checkpoint repository satisfies. Subclass and provide a
`checkpoint_repo` fixture."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from eventsource.repositories.checkpoint import CheckpointRepository


class CheckpointRepositoryContract:
    """Backend-agnostic checkpoint behaviour."""

    async def test_unknown_projection_has_no_checkpoint(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        assert await checkpoint_repo.get_checkpoint(projection_name="nobody") is None
        assert await checkpoint_repo.get_position("nobody") is None
        assert await checkpoint_repo.get_checkpoint_data(projection_name="nobody") is None
        assert await checkpoint_repo.get_lag_metrics(projection_name="nobody") is None

    async def test_update_checkpoint_upserts_and_counts(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        first, second = uuid4(), uuid4()
        await checkpoint_repo.update_checkpoint(projection_name="P", event_id=first, event_type="A")
        await checkpoint_repo.update_checkpoint(
            projection_name="P", event_id=second, event_type="B"
        )
        assert await checkpoint_repo.get_checkpoint(projection_name="P") == second
        data = await checkpoint_repo.get_checkpoint_data(projection_name="P")
        assert data is not None
        assert (data.last_event_id, data.last_event_type, data.events_processed) == (
            second,
            "B",
            2,
        )
        assert data.last_processed_at is not None
        assert data.last_processed_at.tzinfo is not None

    async def test_positions_are_saved_and_read_back(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        event_id = uuid4()
        await checkpoint_repo.save_position("sub", 41, uuid4(), "A")
        await checkpoint_repo.save_position("sub", 42, event_id, "B")
        assert await checkpoint_repo.get_position("sub") == 42
        data = await checkpoint_repo.get_checkpoint_data(projection_name="sub")
        assert data is not None
        assert (data.global_position, data.last_event_id, data.events_processed) == (
            42,
            event_id,
            2,
        )

    async def test_a_save_counts_the_events_it_covers(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        save = checkpoint_repo.save_position
        await save("sub", 10, uuid4(), "A", count=10)  # type: ignore[call-arg]
        await save("sub", 12, uuid4(), "A", count=0)  # type: ignore[call-arg]
        await save("sub", 15, uuid4(), "A", count=3)  # type: ignore[call-arg]
        data = await checkpoint_repo.get_checkpoint_data(projection_name="sub")
        assert data is not None
        assert (data.global_position, data.events_processed) == (15, 13)
        with pytest.raises(ValueError, match="count must be an int >= 0"):
            await save("sub", 16, uuid4(), "A", count=-1)  # type: ignore[call-arg]
        assert await checkpoint_repo.get_position("sub") == 15

    async def test_cursor_is_kept_beside_the_position(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        save = checkpoint_repo.save_position
        await save("sub", 7, uuid4(), "A", cursor="900:7")  # type: ignore[call-arg]
        assert await checkpoint_repo.get_cursor("sub") == "900:7"  # type: ignore[attr-defined]
        assert await checkpoint_repo.get_position("sub") == 7

    async def test_reset_forgets_one_projection_only(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        await checkpoint_repo.update_checkpoint(
            projection_name="A", event_id=uuid4(), event_type="X"
        )
        await checkpoint_repo.update_checkpoint(
            projection_name="B", event_id=uuid4(), event_type="X"
        )
        await checkpoint_repo.reset_checkpoint(projection_name="A")
        assert await checkpoint_repo.get_checkpoint(projection_name="A") is None
        assert await checkpoint_repo.get_checkpoint(projection_name="B") is not None
        names = [c.projection_name for c in await checkpoint_repo.get_all_checkpoints()]
        assert names == ["B"]

    async def test_all_checkpoints_are_sorted_by_name(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        for name in ("c", "a", "b"):
            await checkpoint_repo.save_position(name, 1, uuid4(), "X")
        names = [c.projection_name for c in await checkpoint_repo.get_all_checkpoints()]
        assert names == ["a", "b", "c"]

    async def test_lag_metrics_report_progress(self, checkpoint_repo: CheckpointRepository) -> None:
        last = uuid4()
        for event_id in (uuid4(), last):
            await checkpoint_repo.update_checkpoint(
                projection_name="P", event_id=event_id, event_type="A"
            )
        metrics = await checkpoint_repo.get_lag_metrics(projection_name="P", event_types=["A"])
        assert metrics is not None
        assert metrics.projection_name == "P"
        assert metrics.last_event_id == str(last)
        assert metrics.events_processed == 2
        assert metrics.lag_seconds >= 0.0
        assert metrics.last_processed_at is not None

    async def test_concurrent_updates_count_every_event(
        self, checkpoint_repo: CheckpointRepository
    ) -> None:
        await asyncio.gather(
            *(
                checkpoint_repo.update_checkpoint(
                    projection_name="P", event_id=uuid4(), event_type="A"
                )
                for _ in range(20)
            )
        )
        data = await checkpoint_repo.get_checkpoint_data(projection_name="P")
        assert data is not None
        assert data.events_processed == 20
