"""Every public class and function has a docstring: the reference pages are generated from them
(mkdocstrings), so a name without one would appear there as a bare signature."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import eventsource


def _public_modules() -> list[str]:
    """`eventsource` and its public subpackages and modules (no leading underscore)."""
    found = ["eventsource"]
    for info in pkgutil.walk_packages(eventsource.__path__, "eventsource."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts) or "testing" in parts or "cli" in parts:
            continue
        found.append(info.name)
    return found


def _exported(module_name: str) -> list[tuple[str, object]]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # a backend whose extra is missing (the core run)
        return []
    names = getattr(module, "__all__", None)
    if names is None:
        return []
    out = []
    for name in names:
        try:
            out.append((f"{module_name}.{name}", getattr(module, name)))
        except ImportError:  # a lazily exported backend whose extra is missing
            continue
    return out


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing = sorted(
        path
        for module in _public_modules()
        for path, obj in _exported(module)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (obj.__doc__ or "").strip()
    )
    assert missing == [], f"public names without a docstring: {missing}"
