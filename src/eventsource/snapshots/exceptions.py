"""Snapshot errors (the repository never raises them during `load`; they serve custom code)."""

from __future__ import annotations

from uuid import UUID

from eventsource.exceptions import EventSourceError

__all__ = [
    "SnapshotDeserializationError",
    "SnapshotError",
    "SnapshotNotFoundError",
    "SnapshotSchemaVersionError",
]


class SnapshotError(EventSourceError):
    """Base of snapshot errors; an `EventSourceError`, so `except EventSourceError` catches it."""


class _AggregateSnapshotError(SnapshotError):
    """A snapshot error about one aggregate's snapshot: it owns the aggregate's id and type."""

    def __init__(self, aggregate_id: UUID, aggregate_type: str, message: str) -> None:
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type
        super().__init__(message)


class SnapshotDeserializationError(_AggregateSnapshotError):
    """A stored snapshot's state could not be turned back into the aggregate's state."""

    def __init__(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        original_error: BaseException | None = None,
        message: str | None = None,
    ) -> None:
        self.original_error = original_error
        self.message = message or (
            f"Cannot deserialise the snapshot of {aggregate_type} {aggregate_id}"
            + (f": {original_error}" if original_error is not None else "")
        )
        super().__init__(aggregate_id, aggregate_type, self.message)


class SnapshotSchemaVersionError(_AggregateSnapshotError):
    """A snapshot was taken with another schema version of the aggregate's state."""

    def __init__(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        snapshot_schema_version: int,
        expected_schema_version: int,
    ) -> None:
        self.snapshot_schema_version = snapshot_schema_version
        self.expected_schema_version = expected_schema_version
        super().__init__(
            aggregate_id,
            aggregate_type,
            f"Snapshot of {aggregate_type} {aggregate_id} has schema version "
            f"{snapshot_schema_version}, expected {expected_schema_version}",
        )


class SnapshotNotFoundError(_AggregateSnapshotError):
    """No snapshot exists for the aggregate."""

    def __init__(self, aggregate_id: UUID, aggregate_type: str) -> None:
        super().__init__(
            aggregate_id, aggregate_type, f"No snapshot for {aggregate_type} {aggregate_id}"
        )
