"""Upcasters: pure functions that bring a stored event's JSON payload to its class's shape.

An upcaster is keyed by the *stored* type name and `event_version` of the rows it reads. A
plain one turns version v into v + 1 (one dict in, one dict out); a split turns one stored
event into several events of other registered types. Chains compose: rows of v1 pass through
v1→v2 then v2→v3. Nothing is ever written back: reads apply the chain each time (see
`eventsource.evolution._reading` and docs/evolution.md).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eventsource.events.registry import EVOLUTION_SEEN, EventRegistry, default_registry
from eventsource.evolution.errors import DuplicateUpcasterError

__all__ = [
    "SplitFunction",
    "Upcaster",
    "UpcasterFunction",
    "Upcasters",
    "default_upcasters",
    "register_split",
    "register_upcaster",
    "split_upcaster",
    "splits_registered",
    "upcaster",
    "upcasters_for",
]

UpcasterFunction = Callable[[dict[str, Any]], dict[str, Any]]
"""A v → v+1 step: the stored payload dict in, the next version's dict out."""

SplitFunction = Callable[[dict[str, Any]], Sequence[dict[str, Any]]]
"""A split: the stored payload dict in, one dict per derived event out (each naming its
`event_type`, one of the split's targets)."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Upcaster:
    """One registered step: the stored `event_type` and `from_version` it reads, its function,
    and for a split the target type names (`into`; empty for a plain v → v+1 step)."""

    event_type: str
    from_version: int
    function: Callable[[dict[str, Any]], Any]
    into: tuple[str, ...] = ()

    @property
    def is_split(self) -> bool:
        """True for a 1 → N split."""
        return bool(self.into)

    @property
    def name(self) -> str:
        """The function's module-qualified name, as errors give it."""
        function = self.function
        module = getattr(function, "__module__", None) or "?"
        return f"{module}.{getattr(function, '__qualname__', repr(function))}"

    def describe(self) -> str:
        """`name (Type v1→v2)`, or `name (Type v1→A+B)` for a split."""
        step = "+".join(self.into) if self.into else f"v{self.from_version + 1}"
        return f"{self.name} ({self.event_type} v{self.from_version}→{step})"


class Upcasters:
    """A set of upcasters, keyed by (stored type name, version); at most one per key.

    `accept_newer_versions=True` makes reads load a row stored under a newer `event_version`
    than its class declares, ignoring fields the class lacks, instead of raising
    `UnknownEventVersionError`. Give `registry=` to use this set for the stores, buses and
    relays built with that event registry (else they use `default_upcasters`).
    """

    def __init__(
        self, *, accept_newer_versions: bool = False, registry: EventRegistry | None = None
    ) -> None:
        self.accept_newer_versions = accept_newer_versions
        self._steps: dict[tuple[str, int], Upcaster] = {}
        self._snapshot_steps: dict[tuple[str, int], Upcaster] = {}
        self._names: set[str] = set()  # the type names with event steps
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every change: cached read plans check it
        if registry is not None:
            _BOUND[registry] = self

    # -- event upcasters ---------------------------------------------------------------------

    def register(self, event_type: str, from_version: int, function: UpcasterFunction) -> None:
        """Register `function` as the `event_type` v`from_version` → v`from_version + 1` step."""
        self._add(self._steps, Upcaster(event_type, _version(from_version), function))

    def register_split(
        self, event_type: str, from_version: int, function: SplitFunction, into: Sequence[str]
    ) -> None:
        """Register `function` as the split of `event_type` v`from_version` into events of the
        types named by `into` (each must be registered; `check_evolution` verifies)."""
        targets = tuple(into)
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(f"a split needs target type names in into=, got {into!r}")
        self._add(self._steps, Upcaster(event_type, _version(from_version), function, targets))
        _SPLITS[0] += 1

    def upcaster(self, event_type: str, from_version: int) -> Callable[[F], F]:
        """Decorator form of `register`."""

        def decorate(function: F) -> F:
            self.register(event_type, from_version, function)
            return function

        return decorate

    def split(self, event_type: str, from_version: int, into: Sequence[str]) -> Callable[[F], F]:
        """Decorator form of `register_split`."""

        def decorate(function: F) -> F:
            self.register_split(event_type, from_version, function, into)
            return function

        return decorate

    def step(self, event_type: str, version: int) -> Upcaster | None:
        """The step registered for rows of `event_type` at `version`, or None."""
        return self._steps.get((event_type, version))

    def steps(self) -> list[Upcaster]:
        """Every event step, by type name and version."""
        return [self._steps[key] for key in sorted(self._steps)]

    def has_steps_for(self, event_type: str) -> bool:
        """True if any step reads rows stored under `event_type`."""
        return event_type in self._names

    # -- snapshot upcasters ------------------------------------------------------------------

    def register_snapshot(
        self, aggregate_type: str, from_schema_version: int, function: UpcasterFunction
    ) -> None:
        """Register `function` as the step bringing a snapshot state of `aggregate_type` from
        schema version `from_schema_version` to the next one."""
        step = Upcaster(aggregate_type, _version(from_schema_version), function)
        self._add(self._snapshot_steps, step)

    def snapshot_upcaster(self, aggregate_type: str, from_schema_version: int) -> Callable[[F], F]:
        """Decorator form of `register_snapshot`."""

        def decorate(function: F) -> F:
            self.register_snapshot(aggregate_type, from_schema_version, function)
            return function

        return decorate

    def snapshot_step(self, aggregate_type: str, schema_version: int) -> Upcaster | None:
        """The snapshot step for `aggregate_type` at `schema_version`, or None."""
        return self._snapshot_steps.get((aggregate_type, schema_version))

    # -- housekeeping ------------------------------------------------------------------------

    def clear(self) -> None:
        """Remove every upcaster (tests)."""
        with self._lock:
            self._steps.clear()
            self._snapshot_steps.clear()
            self._names.clear()
            self.generation += 1

    def _add(self, table: dict[tuple[str, int], Upcaster], step: Upcaster) -> None:
        if not isinstance(step.event_type, str) or not step.event_type:
            raise ValueError(f"an upcaster needs a type name, got {step.event_type!r}")
        if not callable(step.function):
            raise TypeError(f"an upcaster must be callable, got {step.function!r}")
        key = (step.event_type, step.from_version)
        with self._lock:
            existing = table.get(key)
            if existing is not None and existing.function is not step.function:
                raise DuplicateUpcasterError(
                    f"two upcasters for {step.event_type} v{step.from_version}: "
                    f"{existing.describe()} and {step.describe()}"
                )
            table[key] = step
            if table is self._steps:
                self._names.add(step.event_type)
                EVOLUTION_SEEN[0] = True
            self.generation += 1

    def __repr__(self) -> str:
        return f"Upcasters({len(self._steps)} steps, {len(self._snapshot_steps)} snapshot steps)"


_SPLITS = [0]  # splits registered in any set: until one is, no page is searched for parts


def splits_registered() -> bool:
    """True once any `Upcasters` has registered a split (the codec's cheap check)."""
    return _SPLITS[0] > 0


def _version(value: object) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"an upcaster's from_version must be an int >= 1, got {value!r}")
    return value


default_upcasters = Upcasters()
"""The upcasters of every registry no other `Upcasters` was bound to."""

_BOUND: weakref.WeakKeyDictionary[EventRegistry, Upcasters] = weakref.WeakKeyDictionary()
_BOUND[default_registry] = default_upcasters


def upcasters_for(registry: EventRegistry | None) -> Upcasters:
    """The upcasters bound to `registry` (`Upcasters(registry=...)`), else the default ones."""
    if registry is None:
        return default_upcasters
    return _BOUND.get(registry, default_upcasters)


def upcaster(
    event_type: str, from_version: int, *, upcasters: Upcasters | None = None
) -> Callable[[F], F]:
    """Decorator: register a v`from_version` → v+1 upcaster of stored `event_type` rows."""
    return (upcasters or default_upcasters).upcaster(event_type, from_version)


def register_upcaster(
    event_type: str,
    from_version: int,
    function: UpcasterFunction,
    *,
    upcasters: Upcasters | None = None,
) -> None:
    """Explicit form of `upcaster`."""
    (upcasters or default_upcasters).register(event_type, from_version, function)


def split_upcaster(
    event_type: str, from_version: int, into: Sequence[str], *, upcasters: Upcasters | None = None
) -> Callable[[F], F]:
    """Decorator: register a split of stored `event_type` v`from_version` rows into `into`."""
    return (upcasters or default_upcasters).split(event_type, from_version, into)


def register_split(
    event_type: str,
    from_version: int,
    function: SplitFunction,
    into: Sequence[str],
    *,
    upcasters: Upcasters | None = None,
) -> None:
    """Explicit form of `split_upcaster`."""
    (upcasters or default_upcasters).register_split(event_type, from_version, function, into)
