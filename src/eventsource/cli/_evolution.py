"""What a stored type and version resolve to under the app's classes and upcasters.

`events types` and the web event page both ask it: which class (through `renamed_from` old
names), at which current version, by which upcaster steps, and whether the row can be read
at all (no upcaster path; a version newer than the code). The upcasters are those bound to
the app's registry (`Upcasters(registry=...)`), else the default ones, as the stores use.
"""

from __future__ import annotations

from typing import Any

from eventsource.cli._events import UnknownEvent, resolve_known
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.evolution._reading import (
    Parts,
    ReadPlan,
    current_version,
    live_name,
    read_plan,
    retired_plan,
)
from eventsource.evolution.upcasting import upcasters_for
from eventsource.exceptions import EventSourceError

__all__ = ["STATUSES", "current_shape", "resolve_stored"]

_ENVELOPE = frozenset(DomainEvent.model_fields)

STATUSES = {
    "current": "stored at the class's current version",
    "upcast": "read through upcasters (or an old name) to the current version",
    "split": "split by an upcaster into other types",
    "no_path": "NO UPCASTER PATH to the current version",
    "newer": "NEWER than the code's version",
    "unknown": "UNKNOWN: no class registered (pass --app?)",
}
"""Each resolution status, as `events types` explains it (the flagged ones in capitals)."""


def resolve_stored(
    stored_type: str, stored_version: int | None, registry: EventRegistry | None
) -> dict[str, Any]:
    """What rows of `stored_type` at `stored_version` (None: no field, read as 1) become:
    `class`, `current_type`, `current_version`, `status` (a key of `STATUSES`), `upcasters`
    (the steps' descriptions) and, for a split, `split_into`."""
    upcasters = upcasters_for(registry)
    version = 1 if stored_version is None else stored_version
    cls = resolve_known(stored_type, registry)
    live = stored_type if cls is None else live_name(stored_type, cls)
    route = ReadPlan(stored_type, cls, live, registry, upcasters, None).route(version)
    found: dict[str, Any] = {
        "class": None if cls is None else f"{cls.__module__}.{cls.__qualname__}",
        "current_type": None if cls is None else live,
        "current_version": None if cls is None else current_version(cls),
        "upcasters": [step.describe() for step in route],
        "split_into": list(route[-1].into) if route and route[-1].is_split else None,
    }
    if found["split_into"] is not None:
        status = "split"
    elif cls is None:
        status = "unknown"
    else:
        reached, current = version + len(route), current_version(cls)
        if reached < current:
            status = "no_path"
        elif reached > current and not upcasters.accept_newer_versions:
            status = "newer"
        else:
            status = "upcast" if route or live != stored_type else "current"
    found["status"] = status
    return found


def current_shape(
    stored_type: str, payload: dict[str, Any], event_id: Any, registry: EventRegistry | None
) -> dict[str, Any] | None:
    """The stored payload read as the code reads it now, when an upcaster or an old name
    applies (None when the row is read as stored): the `class`, `event_type`,
    `event_version` and `data` of each event it becomes (`events`), or the read's `error`."""
    version = payload.get("event_version")
    resolved = resolve_stored(stored_type, version if type(version) is int else None, registry)
    if resolved["status"] in ("current", "unknown"):
        return None
    cls = resolve_known(stored_type, registry)
    plan = (
        read_plan(stored_type, cls, registry) if cls is not None
        else retired_plan(stored_type, registry)
    )
    shape: dict[str, Any] = {**resolved, "events": [], "error": None}
    if plan is None:  # pragma: no cover - a status other than current implies a plan
        return None
    try:
        made = plan.upgrade(dict(payload), event_id)
    except EventSourceError as exc:
        shape["error"] = " ".join(str(exc).split())
        return shape
    events = made if isinstance(made, Parts) else (made,)
    shape["events"] = [_shown(event) for event in events]
    return shape


def _shown(event: DomainEvent) -> dict[str, Any]:
    dumped = event.model_dump(mode="json")
    cls = type(event)
    return {
        "class": None if cls is UnknownEvent else f"{cls.__module__}.{cls.__qualname__}",
        "event_type": event.event_type,
        "event_version": event.event_version,
        "data": {key: value for key, value in dumped.items() if key not in _ENVELOPE},
    }
