"""Guarded imports of optional drivers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from types import ModuleType
from typing import Any


def optional(module: str) -> ModuleType | None:
    """The driver module, or None if its extra is missing."""
    try:
        return import_module(module)
    except ImportError:
        return None


def lazy_exports(module: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` serving each name of `sources` from the module it names, imported
    on first use: so a module can list a class whose driver is optional, or one from a module
    that imports it (no cycle), under the path users import it from."""

    def attribute(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(import_module(source), name)

    return attribute
