"""The retention package's errors (a tombstoned stream's is `eventsource.exceptions`'s
`StreamTombstonedError`, raised by the stores)."""

from __future__ import annotations

from eventsource.exceptions import EventSourceError

__all__ = ["PurgeAlreadyRunningError", "RetentionRuleError", "SnapshotRequiredError"]


class RetentionRuleError(EventSourceError, ValueError):
    """A retention rule or call argument is invalid (a negative count, age or version, a state
    change the stream's state forbids); the message names the value. Nothing was changed."""


class SnapshotRequiredError(EventSourceError):
    """Truncating an aggregate's stream needs a snapshot at or after the cut (else the
    aggregate could not be loaded any more); pass `take_snapshot=True` to take one first."""


class PurgeAlreadyRunningError(EventSourceError):
    """Another purge runner holds the purge lease (one runner at a time); nothing was deleted."""
