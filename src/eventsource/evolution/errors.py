"""The errors of schema evolution: misconfiguration found at start-up, and rows that cannot be
brought to their class's current shape at read time."""

from __future__ import annotations

from eventsource.exceptions import CorruptEventError, EventSourceError

__all__ = [
    "AliasConflictError",
    "DuplicateUpcasterError",
    "EvolutionConfigError",
    "UnknownEventVersionError",
    "UpcasterChainError",
    "UpcasterFailedError",
    "UpcasterTargetError",
]


class EvolutionConfigError(EventSourceError):
    """Upcasters and aliases that do not fit together; raised by `check_evolution` (at
    start-up) or by the registration that makes the conflict. The message names both sides."""


class DuplicateUpcasterError(EvolutionConfigError):
    """Two upcasters for the same step (stored type name and version)."""


class UpcasterChainError(EvolutionConfigError):
    """A chain of upcasters with a gap, or whose end is not its class's `event_version`."""


class AliasConflictError(EvolutionConfigError):
    """A `renamed_from` name that is also a live type name, or that two classes claim."""


class UpcasterTargetError(EvolutionConfigError):
    """A split names a target event type no registry resolves."""


class UpcasterFailedError(CorruptEventError):
    """An upcaster raised, or returned something other than what its kind must return.

    `upcaster` is the function's qualified name; the message names it, the event id and, from
    reads, the row's global position."""

    upcaster: str = ""


class UnknownEventVersionError(CorruptEventError):
    """A row stored under a newer `event_version` than its class declares (written by newer
    code). `stored_version` is the row's version; the message names type, version and, from
    reads, position. `Upcasters(accept_newer_versions=True)` loads such rows instead, ignoring
    the fields the class does not know."""

    stored_version: int = 0
