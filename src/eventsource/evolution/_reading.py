"""Read plans: how the codec turns rows of one stored type name into current-shape events.

`read_plan` answers None for a type that takes no part in evolution (no upcasters, not read
under an old name, no declared `event_version`): the codec then keeps its plain decoder. Else
a `ReadPlan` decodes a payload: parse it, look up the route of its stored version (once per
version per plan; the codec builds one plan per type per page), run the route's upcasters and
validate the result as the class. A split answers `Parts`, the derived events in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, cast

from pydantic import ValidationError
from pydantic_core import from_json

from eventsource._compat.pydantic import python_validator
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, event_type_name, resolve_event_class
from eventsource.evolution.errors import UnknownEventVersionError, UpcasterFailedError
from eventsource.evolution.upcasting import Upcaster, Upcasters, upcasters_for
from eventsource.exceptions import CorruptEventError, EventTypeNotFoundError

__all__ = [
    "Parts", "ReadPlan", "at_version", "current_version", "live_name", "read_plan",
    "retired_plan", "version_needle",
]

Convert = Callable[[type[DomainEvent], dict[str, Any]], dict[str, Any]]

# The envelope a split's parts take from the stored event unless the split sets them.
_ENVELOPE = (
    "aggregate_id", "aggregate_type", "aggregate_version", "occurred_at", "tenant_id",
    "actor_id", "correlation_id", "causation_id", "metadata",
)
_PARTS_NAMESPACE = uuid.UUID("6f1d4c8e-3a0b-5e8f-9c71-2b6d0e4a9f13")
_DECLARED: dict[type[DomainEvent], bool] = {}


class Parts(tuple[DomainEvent, ...]):
    """The events a split derives from one stored event, in order."""

    __slots__ = ()


def version_needle(version: int) -> str:
    """What `at_version` looks for: the field as the codec writes it (compact, a comma after)."""
    return f'"event_version":{version},'


def at_version(payload: Any, needle: str) -> bool:
    """True if a JSON text is surely at the version of `needle` (`version_needle`), without
    parsing it: the field as the codec writes it, near the start, with no object opened before
    it (so it is the top-level field). False says "parse it and see"."""
    if type(payload) is not str:
        return False
    at = payload.find(needle, 0, 200)
    return at > 0 and payload.rfind("{", 0, at) == 0


def current_version(cls: type[DomainEvent]) -> int:
    """The `event_version` a class writes (its field default)."""
    default = cls.model_fields["event_version"].default
    return default if isinstance(default, int) else 1


def declares_version(cls: type[DomainEvent]) -> bool:
    """True if the class (or a base below DomainEvent) declares its own `event_version`."""
    found = _DECLARED.get(cls)
    if found is None:
        found = _DECLARED[cls] = any(
            "event_version" in vars(base).get("__annotations__", {})
            for base in cls.__mro__
            if base is not DomainEvent and isinstance(base, type) and issubclass(base, DomainEvent)
        )
    return found


def live_name(stored_name: str, cls: type[DomainEvent]) -> str:
    """The name rows stored as `stored_name` are read under: the class's own for one of its
    old names (`renamed_from`), else the stored name (a class may be registered under several
    names, or a registry may resolve any name to one class: those are not renames)."""
    return event_type_name(cls) if stored_name in cls.renamed_from else stored_name


def read_plan(
    stored_name: str,
    cls: type[DomainEvent],
    registry: EventRegistry | None,
    convert: Convert | None = None,
) -> ReadPlan | None:
    """The plan for rows stored as `stored_name` (resolved to `cls`), or None when the plain
    decoder reads them as they are."""
    upcasters = upcasters_for(registry)
    live = live_name(stored_name, cls)
    steps = upcasters.has_steps_for(stored_name) or (
        live != stored_name and upcasters.has_steps_for(live)
    )
    if not steps and live == stored_name and not declares_version(cls):
        return None
    return ReadPlan(stored_name, cls, live, registry, upcasters, convert)


def retired_plan(
    stored_name: str, registry: EventRegistry | None, convert: Convert | None = None
) -> ReadPlan | None:
    """The plan for rows of a type no class is registered under any more, when upcasters
    read it (a split retires its source type); None otherwise."""
    upcasters = upcasters_for(registry)
    if not upcasters.has_steps_for(stored_name):
        return None
    return ReadPlan(stored_name, None, stored_name, registry, upcasters, convert)


class ReadPlan:
    """Reads the rows of one stored type name; routes are cached per stored version."""

    def __init__(
        self,
        stored_name: str,
        cls: type[DomainEvent] | None,
        live: str,
        registry: EventRegistry | None,
        upcasters: Upcasters,
        convert: Convert | None,
    ) -> None:
        self.stored_name = stored_name
        self.cls = cls
        self.live = live
        self.current = current_version(cls) if cls is not None else 0
        self._registry = registry
        self._upcasters = upcasters
        self._convert = convert
        self._validate = python_validator(cls) if cls is not None else None
        self._routes: dict[int, tuple[Upcaster, ...]] = {}
        self._targets: dict[str, ReadPlan] = {}
        #: No step reads this type: rows need only the newer-version check.
        self.plain = live == stored_name and not upcasters.has_steps_for(live)
        #: Rows stored at the current version need nothing either.
        self.current_is_final = live == stored_name and not self._route(self.current)

    def decode(self, payload: Any, event_id: Any) -> DomainEvent | Parts:
        """The row's event at the class's current shape (or a split's parts)."""
        if isinstance(payload, dict):
            data = dict(payload)  # the caller's dict stays as it was
        else:
            try:
                data = from_json(payload, cache_strings="keys")
            except ValueError as exc:
                raise CorruptEventError(event_id, self.stored_name, str(exc)) from exc
            if not isinstance(data, dict):
                raise CorruptEventError(event_id, self.stored_name, "payload is not an object")
        return self.upgrade(data, event_id)

    def fast_decoder(
        self, plain: Callable[[Any, Any], DomainEvent]
    ) -> Callable[[Any, Any], DomainEvent | Parts]:
        """`decode` for a page's rows, written for speed: a row at the current version goes
        to `plain` (pydantic from the text) after one substring search; a row whose version's
        steps are all v → v+1 up to the current version runs them inline; any other row (a
        split, a newer version, a bad payload) takes `decode`, which says what is wrong."""
        needle = version_needle(self.current) if self.current_is_final else None
        chains = {
            version: tuple((step.function, step.from_version + 1) for step in route)
            for version in range(1, self.current)
            if (route := self._route(version))
            and not any(step.into for step in route)
            and route[-1].from_version + 1 == self.current
        }
        if self.current_is_final:  # (a text the search missed: jsonb's, say)
            chains[self.current] = ()
        validate, live, slow = self._validate, self.live, self.decode
        if self._convert is not None or validate is None:
            return slow

        def decode(payload: Any, event_id: Any) -> DomainEvent | Parts:
            if type(payload) is str:
                if needle is not None:
                    at = payload.find(needle, 0, 200)
                    if at > 0 and payload.rfind("{", 0, at) == 0:
                        return plain(payload, event_id)
                data = _chained(payload, chains)
                if data is not None:
                    data["event_type"] = live
                    try:
                        return cast(DomainEvent, validate(data))
                    except (ValidationError, ValueError) as exc:
                        raise CorruptEventError(event_id, self.stored_name, str(exc)) from exc
            return slow(payload, event_id)

        return decode

    def upgrade(self, data: dict[str, Any], event_id: Any) -> DomainEvent | Parts:
        """`decode` for a parsed payload the plan may change."""
        version = data.get("event_version", 1)
        if type(version) is not int:
            raise CorruptEventError(event_id, self.stored_name, f"event_version {version!r}")
        route = self._routes.get(version)
        if route is None:
            route = self._routes[version] = self._route(version)
        for step in route:
            if step.into:
                return self._split(step, data, event_id)
            try:
                data = step.function(data)
            except Exception as exc:
                raise _failed(step, event_id, f"raised {type(exc).__name__}: {exc}") from exc
            if type(data) is not dict:
                raise _failed(step, event_id, f"returned {type(data).__name__}, not a dict")
            data["event_version"] = version = step.from_version + 1
        if self.cls is None or self._validate is None:
            raise CorruptEventError(
                event_id, self.stored_name, f"unknown event type, and no split reads v{version}"
            )
        if version > self.current:
            if not self._upcasters.accept_newer_versions:
                error = UnknownEventVersionError(
                    event_id, self.stored_name,
                    f"stored event_version {version} is newer than {self.cls.__qualname__}'s "
                    f"{self.current} (written by newer code; Upcasters(accept_newer_versions="
                    "True) loads it ignoring unknown fields)",
                )
                error.stored_version = version
                raise error
            data["event_version"] = self.current
        data["event_type"] = self.live
        if self._convert is not None:
            data = self._convert(self.cls, data)
        try:
            return cast(DomainEvent, self._validate(data))
        except (ValidationError, ValueError) as exc:
            raise CorruptEventError(event_id, self.stored_name, str(exc)) from exc

    def route(self, version: int) -> tuple[Upcaster, ...]:
        """The steps rows stored at `version` go through (operator tools show them)."""
        return self._route(version)

    def _route(self, version: int) -> tuple[Upcaster, ...]:
        """The steps from `version` on: under the stored name, else under the live one."""
        steps: list[Upcaster] = []
        find = self._upcasters.step
        while True:
            step = find(self.stored_name, version)
            if step is None and self.live != self.stored_name:
                step = find(self.live, version)
            if step is None:
                return tuple(steps)
            steps.append(step)
            if step.into:
                return tuple(steps)
            version += 1

    def _split(self, step: Upcaster, data: dict[str, Any], event_id: Any) -> Parts:
        produced = _invoke(step, data, event_id)
        if not isinstance(produced, list | tuple) or not all(isinstance(p, dict) for p in produced):
            what = f"returned {type(produced).__name__}, not a list of dicts"
            raise _failed(step, event_id, what)
        events: list[DomainEvent] = []
        for index, made_part in enumerate(produced):
            part = dict(made_part)
            target = part.get("event_type")
            if target not in step.into:
                raise _failed(
                    step, event_id, f"part {index} has event_type {target!r}, not one of "
                    f"{list(step.into)}"
                )
            for name in _ENVELOPE:
                if name not in part and name in data:
                    part[name] = data[name]
            if "event_id" not in part:
                part["event_id"] = str(uuid.uuid5(_PARTS_NAMESPACE, f"{event_id}/{index}"))
            plan = self._target(cast(str, target), event_id)
            part.setdefault("event_version", plan.current)
            made = plan.upgrade(part, event_id)
            events.extend(made if isinstance(made, Parts) else (made,))
        return Parts(events)

    def _target(self, name: str, event_id: Any) -> ReadPlan:
        plan = self._targets.get(name)
        if plan is None:
            try:
                cls = resolve_event_class(name, self._registry)
            except EventTypeNotFoundError as exc:
                raise CorruptEventError(event_id, name, f"split target unknown ({exc})") from exc
            plan = self._targets[name] = ReadPlan(
                name, cls, live_name(name, cls), self._registry, self._upcasters, self._convert
            )
        return plan


def _chained(
    payload: str, chains: dict[int, tuple[tuple[Callable[[Any], Any], int], ...]]
) -> dict[str, Any] | None:
    """The payload parsed and run through the inline chain of its version; None for anything
    unusual (not a JSON object, no such chain, an upcaster that raised or returned no dict),
    which `ReadPlan.decode` then reads again and names."""
    try:
        data = from_json(payload, cache_strings="keys")
        chain = chains.get(data.get("event_version", 1))
        if chain is None:
            return None
        for function, version in chain:
            data = function(data)
            if type(data) is not dict:
                return None
            data["event_version"] = version
    except Exception:
        return None
    return cast(dict[str, Any], data)


def _invoke(step: Upcaster, data: dict[str, Any], event_id: Any) -> Any:
    try:
        return step.function(data)
    except Exception as exc:
        raise _failed(step, event_id, f"raised {type(exc).__name__}: {exc}") from exc


def _failed(step: Upcaster, event_id: Any, what: str) -> UpcasterFailedError:
    error = UpcasterFailedError(event_id, step.event_type, f"upcaster {step.describe()} {what}")
    error.upcaster = step.name
    return error
