"""Which partition an event belongs to: a stable hash of its stream's aggregate id.

The hash is BLAKE2b of the id's 16 bytes, never Python's `hash()` (salted per process for
strings, and free to change between versions): every process, on every Python version,
puts a stream in the same partition, so one worker at a time sees that stream, in order.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

__all__ = ["cursor_key", "cursor_position", "partition_of"]


def partition_of(aggregate_id: UUID, partitions: int) -> int:
    """The partition (0 to `partitions - 1`) of the stream of `aggregate_id`."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions!r}")
    digest = hashlib.blake2b(aggregate_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def cursor_key(cursor: str | None) -> tuple[int, ...]:
    """A commit-safe store cursor as a sortable key (`""`/None: the start).

    The bundled stores' cursors are integers separated by `:` (SQLite and memory: the
    position; PostgreSQL: transaction and position), ordered as tuples.
    """
    if not cursor:
        return ()
    return tuple(int(part) for part in cursor.split(":"))


def cursor_position(cursor: str | None) -> int:
    """The global position of the event a cursor was taken just after (0: the start)."""
    key = cursor_key(cursor)
    return key[-1] if key else 0
