"""A subscription's checkpoint: where it was last saved, and saving it further, never backwards."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uuid import UUID

    from eventsource.repositories.checkpoint import CheckpointRepository
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["Checkpointer", "accepts_count", "accepts_cursor"]

logger = logging.getLogger("eventsource.subscriptions.manager")


def _accepts(save_position: Callable[..., object], keyword: str) -> bool:
    try:
        params = inspect.signature(save_position).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in params)


def accepts_cursor(save_position: Callable[..., object]) -> bool:
    """Whether a checkpoint repository can keep the store's cursor next to the position."""
    return _accepts(save_position, "cursor")


def accepts_count(save_position: Callable[..., object]) -> bool:
    """Whether a checkpoint repository can add the events a save covers (`count`), not 1."""
    return _accepts(save_position, "count")


class Checkpointer:
    """Saves one subscription's checkpoint row and remembers what the row holds.

    A subscriber that commits its checkpoint itself (see `subscriptions.transactional`) writes
    the row; `committed` then records what it wrote.
    """

    def __init__(
        self, subscription: Subscription, repository: CheckpointRepository, *, save_cursor: bool
    ) -> None:
        self.sub = subscription
        self.repository = repository
        self.save_cursor = save_cursor
        self.save_count = accepts_count(repository.save_position)
        self.saved: tuple[int, str | None] = (-1, None)  # (position, cursor) in the row
        self.counted = 0  # `sub.events_processed` when the row last counted them
        self.at = time.monotonic()
        self.writes = 0

    async def load(self) -> tuple[int, str | None]:
        """The saved position (0: no row) and store cursor (None: not saved)."""
        repository, name = self.repository, self.sub.name
        position = await repository.get_position(name) or 0
        get_cursor = getattr(repository, "get_cursor", None)
        cursor: str | None = await get_cursor(name) if get_cursor is not None else None
        cursor = cursor or None
        self.saved = (position, cursor) if position else (-1, None)
        return position, cursor

    def due(self) -> bool:
        """Whether a periodic checkpoint is due."""
        return time.monotonic() - self.at >= self.sub.config.checkpoint_interval_seconds

    async def save(
        self, position: int, event_id: UUID, event_type: str, cursor: str | None
    ) -> None:
        """Save `position` (and the store cursor just after it, when known); never backwards.

        A failed write is logged and kept in `last_error`; the next save covers it.
        """
        saved_position, saved_cursor = self.saved
        # A known cursor is never replaced by "unknown" for the same position.
        if position < saved_position or (
            position == saved_position and cursor in (None, saved_cursor)
        ):
            return
        sub = self.sub
        processed = sub.events_processed
        extra: dict[str, str | int | None] = {}
        if self.save_cursor:
            extra["cursor"] = cursor
        if self.save_count:  # the row counts events handed over, not checkpoint writes
            extra["count"] = processed - self.counted
        try:
            await self.repository.save_position(
                sub.name, position, event_id, event_type, **extra
            )
        except Exception as exc:
            sub.last_error = exc
            logger.warning("Subscription %s could not save its checkpoint: %s", sub.name, exc)
            return
        self.committed(position, cursor)

    def committed(self, position: int, cursor: str | None) -> None:
        """The row now holds `position` and `cursor`, counting every event handed over."""
        self.saved = (position, cursor)
        self.counted = self.sub.events_processed
        self.at = time.monotonic()
        self.writes += 1
