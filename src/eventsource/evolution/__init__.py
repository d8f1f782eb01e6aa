"""Schema evolution on read: old event names (`renamed_from`), upcaster chains, splits,
snapshot upcasters, and the start-up check that they fit together (docs/evolution.md)."""

from __future__ import annotations

from eventsource.evolution.checks import check_evolution
from eventsource.evolution.errors import (
    AliasConflictError,
    DuplicateUpcasterError,
    EvolutionConfigError,
    UnknownEventVersionError,
    UpcasterChainError,
    UpcasterFailedError,
    UpcasterTargetError,
)
from eventsource.evolution.upcasting import (
    Upcaster,
    Upcasters,
    default_upcasters,
    register_split,
    register_upcaster,
    split_upcaster,
    upcaster,
    upcasters_for,
)

__all__ = [
    "AliasConflictError",
    "DuplicateUpcasterError",
    "EvolutionConfigError",
    "UnknownEventVersionError",
    "Upcaster",
    "UpcasterChainError",
    "UpcasterFailedError",
    "UpcasterTargetError",
    "Upcasters",
    "check_evolution",
    "default_upcasters",
    "register_split",
    "register_upcaster",
    "split_upcaster",
    "upcaster",
    "upcasters_for",
]
