"""`@handles(EventClass)`: marks aggregate (sync) and projection (async) event handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

HANDLES_ATTR = "_handles_event_type"

__all__ = ["get_handled_event_type", "handles", "is_event_handler"]


def handles(event_type: type) -> Callable[[F], F]:
    """Tag a method as the handler of `event_type`; the function is returned unchanged."""

    def decorate(func: F) -> F:
        setattr(func, HANDLES_ATTR, event_type)
        return func

    return decorate


def get_handled_event_type(func: Callable[..., Any]) -> type | None:
    """The event class a function handles, or None."""
    found = getattr(func, HANDLES_ATTR, None)
    return found if isinstance(found, type) else None


def is_event_handler(func: Callable[..., Any]) -> bool:
    """True if `func` was decorated with `@handles`."""
    return get_handled_event_type(func) is not None
