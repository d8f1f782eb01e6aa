"""Retrying dead letters: hand the failed events of a DLQ to a subscriber again."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventsource.stores.codec import decode_event

if TYPE_CHECKING:
    from eventsource.events.base import DomainEvent
    from eventsource.events.registry import EventRegistry
    from eventsource.protocols import FlexibleEventHandler
    from eventsource.repositories.dlq import DLQEntry, DLQRepository

__all__ = ["DeadLetterRetryResult", "retry_dead_letters"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetterRetryResult:
    """What `retry_dead_letters` did: ids resolved, failed again, and not decodable."""

    resolved: list[int | str] = field(default_factory=list)
    failed: list[int | str] = field(default_factory=list)
    undecodable: list[int | str] = field(default_factory=list)


def _event_of(entry: DLQEntry, registry: EventRegistry | None) -> DomainEvent:
    """The dead letter's event, through the codec: a row of an older shape (dead-lettered
    because it could not be read) is upcast like any stored row."""
    data: object = entry.event_data
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise TypeError(f"event data is {type(data).__name__}, not an object")
    return decode_event(entry.event_type, data, registry, entry.event_id)


async def _entries(
    dlq_repo: DLQRepository, dlq_ids: Collection[int | str], projection_name: str | None
) -> list[DLQEntry]:
    """The `failed` entries among `dlq_ids` (of `projection_name`, if given), last id first:
    the caller handles them from the end, so in the order given."""
    entries = []
    for dlq_id in dlq_ids:
        entry = await dlq_repo.get_failed_event_by_id(dlq_id)
        if entry is not None and entry.status == "failed" and (
            projection_name is None or entry.projection_name == projection_name
        ):
            entries.append(entry)
    entries.reverse()
    return entries


async def retry_dead_letters(
    dlq_repo: DLQRepository,
    subscriber: FlexibleEventHandler,
    *,
    projection_name: str | None = None,
    limit: int = 100,
    resolved_by: str = "retry_dead_letters",
    registry: EventRegistry | None = None,
    dlq_ids: Collection[int | str] | None = None,
) -> DeadLetterRetryResult:
    """Re-handle the `failed` dead letters (of `projection_name`, or all), oldest first.

    `dlq_ids` narrows them to those entries, handled in that order (those still `failed`;
    `limit` does not apply).

    `subscriber` is anything with a `handle(event)` (sync or async), e.g. the projection that
    failed. Each entry is marked `retrying`, then `resolved` (by `resolved_by`) if `handle`
    returns, or `failed` again with `retry_count + 1` and the new error if it raises (unless the
    subscriber dead-lettered it again itself, as `CheckpointTrackingProjection.handle` does).
    Entries whose event type is unknown or whose data no longer validates stay `failed`.
    """
    if dlq_ids is None:
        entries = await dlq_repo.get_failed_events(
            projection_name=projection_name, status="failed", limit=limit
        )
    else:
        entries = await _entries(dlq_repo, dlq_ids, projection_name)
    result = DeadLetterRetryResult()
    for entry in reversed(entries):  # the repository lists newest first
        try:
            event = _event_of(entry, registry)
        except Exception:
            logger.exception("Dead letter %s (%s) cannot be decoded", entry.id, entry.event_type)
            result.undecodable.append(entry.id)
            continue
        await dlq_repo.mark_retrying(entry.id)
        try:
            outcome = subscriber.handle(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            logger.warning("Dead letter %s failed again: %s", entry.id, exc)
            result.failed.append(entry.id)
            current = await dlq_repo.get_failed_event_by_id(entry.id)
            if current is None or current.status == "retrying":
                await dlq_repo.add_failed_event(
                    entry.event_id, entry.projection_name, entry.event_type,
                    event.model_dump(mode="json"), exc, entry.retry_count + 1,
                )
            continue
        await dlq_repo.mark_resolved(entry.id, resolved_by)
        result.resolved.append(entry.id)
    return result
