"""The library's exception hierarchy as a text tree, for docs/reference/exceptions.md.

`python tests/docs/exception_tree.py` prints it; test_exception_tree.py checks that the page
holds exactly this, so the page cannot drift from the code.
"""

from __future__ import annotations

import importlib
import pkgutil

import eventsource


def _public_modules() -> list[str]:
    """`eventsource` and every module without a leading underscore in its path (not the CLI)."""
    found = ["eventsource"]
    for info in pkgutil.walk_packages(eventsource.__path__, "eventsource."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts) or "cli" in parts:
            continue
        found.append(info.name)
    return found


def public_exceptions() -> dict[type[BaseException], str]:
    """Every exception class a public `__all__` exports, with the shortest module exporting it."""
    found: dict[type[BaseException], str] = {}
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (isinstance(obj, type) and issubclass(obj, BaseException)):
                continue
            if not obj.__module__.startswith("eventsource"):
                continue
            known = found.get(obj)
            if known is None or len(module_name) < len(known):
                found[obj] = module_name
    return found


def render_tree() -> str:
    """The tree: built-in bases at the top, each class under its first public base (a private
    intermediate is an implementation detail), children by name."""
    exported = public_exceptions()
    children: dict[type[BaseException], list[type[BaseException]]] = {}
    roots: set[type[BaseException]] = set()
    for cls in exported:
        parent = next(base for base in cls.__mro__[1:] if not base.__name__.startswith("_"))
        children.setdefault(parent, []).append(cls)
        if parent not in exported:
            roots.add(parent)
    lines: list[tuple[str, str]] = []

    def label(cls: type[BaseException]) -> str:
        others = [base.__name__ for base in cls.__bases__[1:]]
        return cls.__name__ + (f" (also {', '.join(others)})" if others else "")

    def walk(cls: type[BaseException], prefix: str) -> None:
        kids = sorted(children.get(cls, []), key=lambda kid: kid.__name__)
        for index, kid in enumerate(kids):
            last = index == len(kids) - 1
            lines.append((prefix + ("└── " if last else "├── ") + label(kid), exported[kid]))
            walk(kid, prefix + ("    " if last else "│   "))

    for root in sorted(roots, key=lambda cls: cls.__name__):
        lines.append((root.__name__, ""))
        walk(root, "")
    width = max(len(text) for text, _ in lines) + 2
    return "\n".join((text.ljust(width) + module).rstrip() for text, module in lines)


if __name__ == "__main__":
    print(render_tree())
