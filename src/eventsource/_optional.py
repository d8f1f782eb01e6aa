"""Guarded imports of optional drivers."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


def optional(module: str) -> ModuleType | None:
    """The driver module, or None if its extra is missing."""
    try:
        return import_module(module)
    except ImportError:
        return None
