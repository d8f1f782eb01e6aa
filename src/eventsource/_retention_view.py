"""What stream reads show of retention: the clock that ages events and whether archived streams
are shown. A context variable, so it follows a task like `tenant_scope`; the stores read it on
every stream read, `eventsource.retention.reading` sets it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

__all__ = ["reading", "view"]

Clock = Callable[[], datetime]

_VIEW: ContextVar[tuple[Clock | None, bool]] = ContextVar(
    "eventsource_retention_view", default=(None, False)
)


def view() -> tuple[datetime | None, bool]:
    """(now by the clock `reading` set, None for the database's clock; include archived
    streams) for a stream read made in this context."""
    clock, archived = _VIEW.get()
    return (None if clock is None else clock()), archived


@contextmanager
def reading(*, include_archived: bool = False, clock: Clock | None = None) -> Iterator[None]:
    """Stream reads inside the block show archived streams too (`include_archived`) and age
    events by `clock` instead of the database's clock (for tests and replays).

    ```python
    with reading(include_archived=True):
        stream = await store.get_events(order_id, "Order")
    ```
    """
    if not isinstance(include_archived, bool):
        raise TypeError(f"include_archived must be a bool, got {include_archived!r}")
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a callable returning a datetime, got {clock!r}")
    token = _VIEW.set((clock, include_archived))
    try:
        yield
    finally:
        _VIEW.reset(token)
