"""Every public name appears in the API reference: each name in the `__all__` of `eventsource`
and of its public modules is rendered by a `::: module` directive of docs/reference/ (a module
documented there renders the names of its `__all__`, or all its public names without one)."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from test_public_docstrings import _exported, _public_modules

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
DIRECTIVE = re.compile(r"^:::\s*([\w.]+)((?:\n[ \t]+\S.*)*)", re.MULTILINE)
MEMBER = re.compile(r"^[ \t]+-[ \t]+(\w+)[ \t]*$", re.MULTILINE)


def documented() -> list[tuple[str, list[str]]]:
    """(module, the members its directive lists, or [] for its default members)."""
    found: list[tuple[str, list[str]]] = []
    for page in sorted(REFERENCE.glob("*.md")):
        for module, options in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.append((module, MEMBER.findall(options)))
    return found


def rendered_names(module_name: str) -> set[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return set()
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    return {name for name in vars(module) if not name.startswith("_")}


def test_every_public_name_appears_in_the_reference() -> None:
    rendered: set[str] = set()
    for module, members in documented():
        rendered |= set(members) if members else rendered_names(module)
    missing = sorted(
        qualified
        for module in _public_modules()
        for qualified, value in _exported(module)
        if (inspect.isclass(value) or inspect.isfunction(value))
        and qualified.rpartition(".")[2] not in rendered
    )
    assert not missing, "public names no reference page renders:\n  " + "\n  ".join(missing)
