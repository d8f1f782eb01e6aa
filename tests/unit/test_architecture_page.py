"""docs/architecture.md names modules as a map of the source: each must exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
NAMED = re.compile(r"`(eventsource(?:\.\w+)*)`")


def named_modules() -> list[str]:
    return sorted(set(NAMED.findall(PAGE.read_text(encoding="utf-8"))))


def test_the_page_names_modules() -> None:
    assert len(named_modules()) >= 20


def test_every_module_the_page_names_imports() -> None:
    missing = []
    for name in named_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name}: {exc}")
            continue
        assert isinstance(module, ModuleType)
    assert not missing, "docs/architecture.md names modules that do not import:\n" + "\n".join(
        missing
    )
