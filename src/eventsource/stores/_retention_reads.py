"""What a stream read makes of the retention marker: the first row a stream's read returns
when the stream has a `stream_metadata` row (`eventsource._sql.retention.MARKER`), with the
stream's state and head version; every other column of it is NULL, the position first."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsource.exceptions import StreamTombstonedError

__all__ = ["split_marker"]

def split_marker(
    rows: list[Any], aggregate_id: UUID, aggregate_type: str, version_at: int
) -> tuple[list[Any], int]:
    """The event rows without the marker, and the stream's head version (0 without a marker).

    Raises `StreamTombstonedError` for a tombstoned stream: its reads fail forever."""
    if not rows or rows[0][0] is not None:
        return rows, 0
    marker = rows[0]
    if marker[2] == "tombstoned":
        raise StreamTombstonedError(aggregate_id, aggregate_type)
    return rows[1:], int(marker[version_at])
