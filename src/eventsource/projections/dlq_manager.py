"""`ProjectionDLQManager`: one projection's view of the dead-letter queue."""

from __future__ import annotations

import logging

from eventsource.events.base import DomainEvent
from eventsource.repositories.dlq import DLQEntry, DLQRepository, InMemoryDLQRepository

__all__ = ["ProjectionDLQManager"]

logger = logging.getLogger(__name__)


class ProjectionDLQManager:
    """Sends one projection's failed events to the DLQ and lists them."""

    def __init__(
        self,
        projection_name: str,
        dlq_repo: DLQRepository | None = None,
        enable_tracing: bool = False,
    ) -> None:
        self._projection_name = projection_name
        self._dlq_repo: DLQRepository = (
            dlq_repo if dlq_repo is not None else InMemoryDLQRepository()
        )
        self._enable_tracing = enable_tracing

    @property
    def projection_name(self) -> str:
        return self._projection_name

    @property
    def dlq_repo(self) -> DLQRepository:
        return self._dlq_repo

    async def send_to_dlq(self, event: DomainEvent, error: Exception, retry_count: int) -> bool:
        """Store the failure; False (logged, not raised) if the DLQ itself fails."""
        try:
            await self._dlq_repo.add_failed_event(
                event_id=event.event_id,
                projection_name=self._projection_name,
                event_type=event.event_type,
                event_data=event.model_dump(mode="json"),
                error=error,
                retry_count=retry_count,
            )
        except Exception:
            logger.exception(
                "Could not dead-letter %s for %s", event.event_id, self._projection_name
            )
            return False
        return True

    async def get_failed_events(self, limit: int = 100) -> list[DLQEntry]:
        return await self._dlq_repo.get_failed_events(
            projection_name=self._projection_name, limit=limit
        )
