"""Snapshots: an aggregate's state at a version, so loads read only the tail of its stream."""

from eventsource.exceptions import SQLiteNotAvailableError
from eventsource.snapshots.exceptions import (
    SnapshotDeserializationError,
    SnapshotError,
    SnapshotNotFoundError,
    SnapshotSchemaVersionError,
)
from eventsource.snapshots.in_memory import InMemorySnapshotStore
from eventsource.snapshots.interface import Snapshot, SnapshotStore

__all__ = [
    "InMemorySnapshotStore",
    "SQLiteNotAvailableError",
    "Snapshot",
    "SnapshotDeserializationError",
    "SnapshotError",
    "SnapshotNotFoundError",
    "SnapshotSchemaVersionError",
    "SnapshotStore",
]
