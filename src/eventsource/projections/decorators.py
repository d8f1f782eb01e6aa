"""`@handles(EventClass)`: marks aggregate (sync) and projection (async) event handlers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from eventsource.exceptions import UnhandledEventError

F = TypeVar("F", bound=Callable[..., Any])

HANDLES_ATTR = "_handles_event_type"

__all__ = [
    "check_handler",
    "event_type_name",
    "get_handled_event_type",
    "handler_names",
    "handles",
    "is_event_handler",
    "report_unhandled",
]

logger = logging.getLogger(__name__)


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


def check_handler(owner: object, name: str, method: Callable[..., Any], event_class: type) -> bool:
    """Validate `owner`'s projection handler `name`; True if it takes a connection first."""
    where = f"{type(owner).__name__}.{name}"
    if not inspect.iscoroutinefunction(method):
        raise ValueError(f"{where} must be an async method")
    params = list(inspect.signature(method).parameters.values())
    if len(params) not in (1, 2):
        raise ValueError(
            f"{where} must take (event) or (conn, event), not {len(params)} parameters"
        )
    annotation = params[-1].annotation
    unannotated = annotation is inspect.Parameter.empty  # itself a class: not a mistake
    if isinstance(annotation, type) and annotation is not event_class and not unannotated:
        logger.warning(
            "%s is declared for %s but annotated %s",
            where,
            event_class.__name__,
            annotation.__name__,
        )
    return len(params) == 2


def report_unhandled(owner: object, mode: str, event: Any, handled: Iterable[type]) -> None:
    """An event `owner` has no handler for: raise `UnhandledEventError` ("error"), log a
    warning ("warn") or nothing ("ignore")."""
    if mode == "error":
        raise UnhandledEventError(
            event_type=type(event).__name__,
            event_id=event.event_id,
            handler_class=type(owner).__name__,
            available_handlers=[cls.__name__ for cls in handled],
        )
    if mode == "warn":
        logger.warning(
            "%s has no handler for %s (event %s)",
            type(owner).__name__,
            type(event).__name__,
            event.event_id,
        )


def handler_names(cls: type) -> dict[Any, str]:
    """Event class -> the name of `cls`'s method decorated `@handles(it)`; an override in a
    subclass keeps its base's slot."""
    handlers: dict[Any, str] = {}
    for klass in reversed(cls.__mro__):  # base first
        for name, member in vars(klass).items():
            event_class = get_handled_event_type(member) if callable(member) else None
            if event_class is not None:
                handlers[event_class] = name
    return handlers


def event_type_name(cls: type) -> str:
    """The `event_type` an event class declares (its field default), else its class name."""
    field = getattr(cls, "model_fields", {}).get("event_type")
    default = getattr(field, "default", None)
    return default if isinstance(default, str) else cls.__name__
