"""Retention rules and stream states: plain values, checked when made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from uuid import UUID

from eventsource.retention.exceptions import RetentionRuleError

__all__ = ["RetentionRule", "StreamMetadata", "StreamState"]


class StreamState(StrEnum):
    """What a stream's reads and appends do (see docs/retention.md)."""

    LIVE = "live"
    """Read and appended to as usual (within its retention rule)."""
    SOFT_DELETED = "soft_deleted"
    """Reads find nothing; the next append continues at the next version and is visible."""
    TOMBSTONED = "tombstoned"
    """Hard-deleted, irreversibly: reads and appends raise `StreamTombstonedError` forever."""
    ARCHIVED = "archived"
    """Hidden from normal reads, shown inside `reading(include_archived=True)`; never purged."""


def _non_negative(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise RetentionRuleError(f"{name} must be an int >= 0 or None, got {value!r}")
    if value < 0:
        raise RetentionRuleError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How much of a stream reads keep: events older than `max_age` (by their occurred-at
    time), beyond the newest `max_count`, or below version `truncate_before` are hidden at
    once and deleted by the purge job. None: no limit of that kind.

    Raises `RetentionRuleError` when made with a negative or zero limit.
    """

    max_age: timedelta | None = None
    max_count: int | None = None
    truncate_before: int = 0

    def __post_init__(self) -> None:
        if self.max_age is not None:
            if not isinstance(self.max_age, timedelta):
                raise RetentionRuleError(
                    f"max_age must be a timedelta or None, got {self.max_age!r}"
                )
            if self.max_age <= timedelta(0):
                raise RetentionRuleError(f"max_age must be positive, got {self.max_age}")
        _non_negative("max_count", self.max_count)
        if self.max_count == 0:
            raise RetentionRuleError("max_count must be >= 1 (the newest event is always kept)")
        _non_negative("truncate_before", self.truncate_before)

    @property
    def max_age_seconds(self) -> float | None:
        """`max_age` in seconds, as stored."""
        return None if self.max_age is None else self.max_age.total_seconds()


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """A stream's retention metadata and its head version (its last appended version)."""

    aggregate_id: UUID
    aggregate_type: str
    state: StreamState
    rule: RetentionRule
    version: int
