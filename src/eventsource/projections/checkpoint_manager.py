"""`ProjectionCheckpointManager`: one projection's view of the checkpoint repository."""

from __future__ import annotations

from uuid import UUID

from eventsource.repositories.checkpoint import (
    CheckpointData,
    CheckpointRepository,
    InMemoryCheckpointRepository,
)

__all__ = ["ProjectionCheckpointManager"]


class ProjectionCheckpointManager:
    """One projection's checkpoint: where it got to, read and saved through the checkpoint
    repository (in memory when none is given)."""

    def __init__(
        self,
        projection_name: str,
        checkpoint_repo: CheckpointRepository | None = None,
        enable_tracing: bool = False,
    ) -> None:
        self.projection_name = projection_name
        self.checkpoint_repo: CheckpointRepository = (
            checkpoint_repo if checkpoint_repo is not None else InMemoryCheckpointRepository()
        )
        self._enable_tracing = enable_tracing

    async def get_checkpoint(self) -> UUID | None:
        return await self.checkpoint_repo.get_checkpoint(projection_name=self.projection_name)

    async def update(self, event_id: UUID, event_type: str) -> None:
        await self.checkpoint_repo.update_checkpoint(
            projection_name=self.projection_name, event_id=event_id, event_type=event_type
        )

    async def reset(self) -> None:
        await self.checkpoint_repo.reset_checkpoint(projection_name=self.projection_name)

    async def get_data(self) -> CheckpointData | None:
        return await self.checkpoint_repo.get_checkpoint_data(projection_name=self.projection_name)
