"""Putting demo streams into retention states (soft-deleted, archived...) through the
retention API, from outside the command under test."""

from __future__ import annotations

from uuid import UUID

from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli._runner import run
from eventsource.retention import StreamRetention

__all__ = ["change_state"]


def change_state(url: str, aggregate_id: str, aggregate_type: str, action: str) -> None:
    """Call `StreamRetention.<action>` (soft_delete, tombstone, archive) on the stream."""

    async def go() -> None:
        db = await Backend.open(parse_url(url), BrowsingRegistry(None), create=False)
        try:
            await getattr(StreamRetention(db.store), action)(UUID(aggregate_id), aggregate_type)
        finally:
            await db.close()

    run(go())
