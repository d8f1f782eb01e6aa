"""Errors of dynamic consistency boundaries: each names what was wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsource.exceptions import EventSourceError

__all__ = [
    "DCBConflictError",
    "DCBError",
    "ForeignTokenError",
    "InvalidQueryError",
    "InvalidTagError",
]


class DCBError(EventSourceError):
    """Base of the errors of `eventsource.dcb`."""


class DCBConflictError(DCBError):
    """A conditional append found events matching its query that the reader had not seen;
    nothing was written. `positions` are those events' global positions (ascending)."""

    def __init__(self, positions: Sequence[int]) -> None:
        self.positions = tuple(sorted(positions))
        shown = ", ".join(map(str, self.positions[:20]))
        more = f" and {len(self.positions) - 20} more" if len(self.positions) > 20 else ""
        super().__init__(
            f"Append condition failed: events matching the query were stored after the read "
            f"(positions {shown}{more}); read again and decide again"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.positions,))


class InvalidQueryError(DCBError, ValueError):
    """A query (or one of its items) cannot be run: it is empty, or holds something that is
    not an event type or a tag."""


class InvalidTagError(DCBError, TypeError):
    """A tag is not a non-empty string without NUL characters (given, or derived from an
    event class's `dcb_tags`)."""


class ForeignTokenError(DCBError, ValueError):
    """A consistency token given to a store that did not issue it (or not a token at all)."""
