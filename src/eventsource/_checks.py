"""Range checks of settings, one function per rule, so that every config says a bad value the
same way: `ValueError` naming the setting, the bound and the value given. Driver-free."""

from __future__ import annotations

__all__ = ["at_least", "greater_than", "within_unit"]


def at_least(name: str, value: float, minimum: float) -> None:
    """Raise `ValueError` unless `value >= minimum` ("`name` must be >= `minimum`, got ...")."""
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def greater_than(name: str, value: float, bound: float) -> None:
    """Raise `ValueError` unless `value > bound` ("`name` must be > `bound`, got ...")."""
    if value <= bound:
        raise ValueError(f"{name} must be > {bound}, got {value}")


def within_unit(name: str, value: float) -> None:
    """Raise `ValueError` unless `0 <= value <= 1` ("`name` must be within [0, 1], got ...")."""
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be within [0, 1], got {value}")
