"""docs/reference/exceptions.md draws the exception hierarchy; it must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from exception_tree import render_tree

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "exceptions.md"
_BLOCK = re.compile(r"<!-- exception-tree\b.*?-->\s*```text\n(?P<tree>.*?)\n```", re.DOTALL)


def test_the_exceptions_page_draws_the_current_hierarchy() -> None:
    found = _BLOCK.search(PAGE.read_text(encoding="utf-8"))
    assert found is not None, f"{PAGE.name}: no ```text block after <!-- exception-tree -->"
    assert found["tree"] == render_tree(), (
        "the exception tree in docs/reference/exceptions.md is out of date: replace it with "
        "the output of `python tests/docs/exception_tree.py`"
    )


def test_the_tree_has_every_library_error() -> None:
    tree = render_tree()
    for name in ("OptimisticLockError", "SnapshotError", "SubscriptionError", "SyncClosedError"):
        assert re.search(rf"[├└]── {name}\b", tree), name
