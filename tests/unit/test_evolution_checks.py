"""Issue 15, acceptance 4 (start-up half): each misconfiguration of upcasters and old names
raises its typed error naming both sides; a consistent set passes."""

from __future__ import annotations

from typing import Any

import pytest

from eventsource import DomainEvent, EventRegistry
from eventsource.evolution import (
    AliasConflictError,
    DuplicateUpcasterError,
    UpcasterChainError,
    Upcasters,
    UpcasterTargetError,
    check_evolution,
)


class OrderPlaced(DomainEvent):
    event_type: str = "OrderPlaced"
    aggregate_type: str = "Order"
    event_version: int = 3
    total: int = 0


class LegacyOrder(DomainEvent):
    event_type: str = "LegacyOrder"
    aggregate_type: str = "Order"


class RenamedOrder(DomainEvent):
    event_type: str = "RenamedOrder"
    aggregate_type: str = "Order"
    renamed_from = ("LegacyOrder",)


def step(data: dict[str, Any]) -> dict[str, Any]:
    return data


def other_step(data: dict[str, Any]) -> dict[str, Any]:
    return data


def _setup(*classes: type[DomainEvent]) -> tuple[EventRegistry, Upcasters]:
    registry = EventRegistry()
    for cls in classes:
        registry.register(cls)
    return registry, Upcasters(registry=registry)


def test_a_complete_chain_passes() -> None:
    registry, upcasters = _setup(OrderPlaced)
    upcasters.register("OrderPlaced", 1, step)
    upcasters.register("OrderPlaced", 2, other_step)
    check_evolution(registry)


@pytest.mark.parametrize(
    ("second", "says"),
    [
        (3, r"gap .*step \(OrderPlaced v1→v2\) is followed by .*other_step \(OrderPlaced v3"),
        (None, r"end at v2 with .*step \(OrderPlaced v1→v2\).*OrderPlaced declares event_vers"),
    ],
    ids=["gap", "short-end"],
)
def test_a_broken_chain_names_both_sides(second: int | None, says: str) -> None:
    registry, upcasters = _setup(OrderPlaced)
    upcasters.register("OrderPlaced", 1, step)
    if second is not None:
        upcasters.register("OrderPlaced", second, other_step)
    with pytest.raises(UpcasterChainError, match=says):
        check_evolution(registry)


def test_an_old_name_equal_to_a_live_name_names_both_classes() -> None:
    registry = EventRegistry()
    registry.register(LegacyOrder)
    with pytest.raises(AliasConflictError, match=r"RenamedOrder.renamed_from.*LegacyOrder"):
        registry.register(RenamedOrder)
    other = EventRegistry()  # the other order: the live name comes second
    other.register(RenamedOrder)
    with pytest.raises(AliasConflictError, match=r"LegacyOrder registers.*RenamedOrder.renamed"):
        other.register(LegacyOrder)


def test_an_old_name_live_in_the_default_registry_is_found_at_start_up() -> None:
    from eventsource import default_registry

    registry, _ = _setup(RenamedOrder)
    default_registry.register(LegacyOrder)
    with pytest.raises(AliasConflictError, match=r"RenamedOrder.renamed_from.*LegacyOrder"):
        check_evolution(registry)


def test_a_split_target_not_registered_is_named() -> None:
    registry, upcasters = _setup(OrderPlaced)
    upcasters.register_split("OrderEdited", 1, lambda d: [d], into=("OrderPlaced", "OrderLost"))
    with pytest.raises(UpcasterTargetError, match=r"OrderEdited v1→OrderPlaced\+OrderLost.*'Order"):
        check_evolution(registry)


def test_two_upcasters_for_one_step_name_both() -> None:
    _, upcasters = _setup(OrderPlaced)
    upcasters.register("OrderPlaced", 1, step)
    upcasters.register("OrderPlaced", 1, step)  # the same function again: a no-op
    with pytest.raises(DuplicateUpcasterError, match=r"\.step \(.*\.other_step \("):
        upcasters.register("OrderPlaced", 1, other_step)


def test_two_upcasters_for_one_step_under_old_and_live_names_name_both() -> None:
    registry, upcasters = _setup(RenamedOrder)
    upcasters.register("LegacyOrder", 1, step)
    upcasters.register("RenamedOrder", 1, other_step)
    with pytest.raises(DuplicateUpcasterError, match=r"RenamedOrder v1.*step.*other_step"):
        check_evolution(registry)


def test_registration_refuses_bad_arguments() -> None:
    upcasters = Upcasters()
    with pytest.raises(ValueError, match="from_version"):
        upcasters.register("OrderPlaced", 0, step)
    with pytest.raises(ValueError, match="into="):
        upcasters.register_split("OrderPlaced", 1, lambda d: [d], into=())
    with pytest.raises(TypeError, match="callable"):
        upcasters.register("OrderPlaced", 1, "step")  # type: ignore[arg-type]
