"""Snapshots: an aggregate's state at a version, so loads read only the tail of its stream.

`SQLiteSnapshotStore`, `PostgreSQLSnapshotStore` and `SQLITE_AVAILABLE` load on first use, so
importing this package needs no database driver.
"""

from typing import TYPE_CHECKING

from eventsource._optional import lazy_attributes
from eventsource.exceptions import SQLiteNotAvailableError
from eventsource.snapshots.exceptions import (
    SnapshotDeserializationError,
    SnapshotError,
    SnapshotNotFoundError,
    SnapshotSchemaVersionError,
)
from eventsource.snapshots.in_memory import InMemorySnapshotStore
from eventsource.snapshots.interface import Snapshot, SnapshotStore

if TYPE_CHECKING:
    from eventsource.snapshots.postgresql import PostgreSQLSnapshotStore
    from eventsource.snapshots.sqlite import SQLITE_AVAILABLE, SQLiteSnapshotStore

__all__ = [
    "SQLITE_AVAILABLE",
    "InMemorySnapshotStore",
    "PostgreSQLSnapshotStore",
    "SQLiteNotAvailableError",
    "SQLiteSnapshotStore",
    "Snapshot",
    "SnapshotDeserializationError",
    "SnapshotError",
    "SnapshotNotFoundError",
    "SnapshotSchemaVersionError",
    "SnapshotStore",
]

_LAZY = {
    "SQLITE_AVAILABLE": "eventsource.snapshots.sqlite",
    "SQLiteSnapshotStore": "eventsource.snapshots.sqlite",
    "PostgreSQLSnapshotStore": "eventsource.snapshots.postgresql",
}


if not TYPE_CHECKING:
    __getattr__ = lazy_attributes(__name__, _LAZY)
