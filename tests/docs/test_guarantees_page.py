"""Every test that docs/reference/guarantees.md names as proof of a guarantee exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reference" / "guarantees.md"
_NODE_ID = re.compile(r"`(tests/[\w/]+\.py::[\w:]+)`")


def _named_ids() -> set[str]:
    return set(_NODE_ID.findall(PAGE.read_text(encoding="utf-8")))


def _collected(files: set[str]) -> set[str]:
    """The node ids pytest collects from `files`, parameters dropped."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"collecting the named files failed:\n{result.stdout[-3000:]}"
    return {line.split("[", 1)[0] for line in result.stdout.splitlines() if "::" in line}


def test_every_test_named_on_the_guarantees_page_exists() -> None:
    named = _named_ids()
    assert len(named) >= 40, (
        f"only {len(named)} test ids found on {PAGE.name}: did the page change?"
    )
    files = {node_id.split("::", 1)[0] for node_id in named}
    missing = sorted(node_id for node_id in files if not (ROOT / node_id).is_file())
    assert missing == [], f"{PAGE.name} names test files that do not exist: {missing}"
    unknown = sorted(named - _collected(files))
    assert unknown == [], f"{PAGE.name} names tests that do not exist: {unknown}"
