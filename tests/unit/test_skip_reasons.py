"""The test command says why each test was skipped: a skip hides a missing service or extra,
so its reason must reach whoever runs `scripts/test.sh`, not only a `-v` run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPING = """\
import pytest


def test_needs_a_service() -> None:
    pytest.skip("the service is not reachable: start it")
"""


def test_the_project_configuration_prints_every_skip_reason(tmp_path: Path) -> None:
    module = tmp_path / "test_skipping.py"
    module.write_text(SKIPPING)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), module.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED [1] test_skipping.py:5: the service is not reachable: start it" in (
        result.stdout
    ), result.stdout
