"""`check_evolution`: the start-up check that upcasters and old names fit the classes."""

from __future__ import annotations

from itertools import pairwise

from eventsource.events.base import DomainEvent
from eventsource.events.registry import (
    EventRegistry,
    default_registry,
    resolve_event_class,
)
from eventsource.evolution._reading import current_version, live_name
from eventsource.evolution.errors import (
    AliasConflictError,
    DuplicateUpcasterError,
    UpcasterChainError,
    UpcasterTargetError,
)
from eventsource.evolution.upcasting import Upcaster, Upcasters, upcasters_for
from eventsource.exceptions import EventTypeNotFoundError

__all__ = ["check_evolution"]


def check_evolution(
    registry: EventRegistry | None = None, upcasters: Upcasters | None = None
) -> None:
    """Raise an `EvolutionConfigError` subclass, naming both sides, for the first of: an old
    name (`renamed_from`) that is a live type name; two upcasters for one step (under a class's
    old and live names); a gap in a chain; a chain whose end is not its class's `event_version`;
    a split target no registry resolves. Call it once at start-up, after imports registered
    every event class and upcaster. `upcasters` defaults to those bound to `registry`."""
    chosen = upcasters if upcasters is not None else upcasters_for(registry)
    _check_aliases(registry)
    by_name: dict[str, dict[int, Upcaster]] = {}
    for step in chosen.steps():
        by_name.setdefault(step.event_type, {})[step.from_version] = step
    for name, steps in by_name.items():
        cls = _resolve(name, registry)
        chain = dict(steps)
        if cls is not None and live_name(name, cls) != name:  # an old name: the live steps too
            for version, live_step in by_name.get(live_name(name, cls), {}).items():
                old_step = chain.setdefault(version, live_step)
                if old_step is not live_step:
                    raise DuplicateUpcasterError(
                        f"two upcasters for {cls.__qualname__} v{version}: {old_step.describe()} "
                        f"and {live_step.describe()}"
                    )
        _check_chain(name, chain, cls, registry)


def _resolve(name: str, registry: EventRegistry | None) -> type[DomainEvent] | None:
    try:
        return resolve_event_class(name, registry)
    except EventTypeNotFoundError:
        return None


def _check_aliases(registry: EventRegistry | None) -> None:
    registries = [default_registry] if registry in (None, default_registry) else [
        registry, default_registry
    ]
    for where in registries:
        assert where is not None
        for alias, cls in where.aliases().items():
            for other in registries:
                live = other.get_or_none(alias)
                if live is not None and live is not cls and alias in other:
                    raise AliasConflictError(
                        f"{cls.__qualname__}.renamed_from lists {alias!r}, the live type name "
                        f"of {live.__qualname__}"
                    )


def _check_chain(
    name: str, chain: dict[int, Upcaster], cls: type[DomainEvent] | None,
    registry: EventRegistry | None,
) -> None:
    versions = sorted(chain)
    for before, after in pairwise(versions):
        if after != before + 1:
            raise UpcasterChainError(
                f"gap in the upcasters of {name}: {chain[before].describe()} is followed by "
                f"{chain[after].describe()}; nothing reads v{before + 1}..v{after}"
            )
        if chain[before].is_split:
            raise UpcasterChainError(
                f"{chain[before].describe()} splits {name}, yet {chain[after].describe()} "
                "reads a later version of it"
            )
    last = chain[versions[-1]]
    if last.is_split:
        for target in last.into:
            if _resolve(target, registry) is None:
                raise UpcasterTargetError(
                    f"{last.describe()} makes {target!r} events, a type no registry resolves"
                )
        return
    if cls is None:
        raise UpcasterChainError(
            f"{last.describe()} ends the chain of {name}, a type no registry resolves"
        )
    end, current = last.from_version + 1, current_version(cls)
    if end != current:
        raise UpcasterChainError(
            f"the upcasters of {name} end at v{end} with {last.describe()}, but "
            f"{cls.__qualname__} declares event_version {current}"
        )
