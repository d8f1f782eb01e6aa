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


def lazy_attributes(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module `__getattr__` that imports each of `names` from its module on first
    use, so importing the package loads no driver.

    Packages install it under `if not TYPE_CHECKING:` and import the same names for type
    checkers as `X as X`: so those see real types, and a misspelt name is an error, not `Any`.
    """

    def load(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return load


def sql_backend_attributes(module: str, role: str) -> Callable[[str], Any]:
    """`lazy_attributes` for a module that also offers the SQL backends of `role`, which live
    beside it: `PostgreSQL<role>` and `SQLite<role>` from its package's `postgresql`/`sqlite`."""
    package = module.rpartition(".")[0]
    names = {f"PostgreSQL{role}": f"{package}.postgresql", f"SQLite{role}": f"{package}.sqlite"}
    return lazy_attributes(module, names)
