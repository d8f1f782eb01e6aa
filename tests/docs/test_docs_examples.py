"""Every python example of README.md and docs/ runs: one test per page with python blocks (see
doc_blocks.py for the markers, docs_runner.py for the services a page may ask for)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import DocMarkupError, parse_page
from docs_runner import DocExampleError, run_page, services

ROOT = Path(__file__).resolve().parents[2]
ALL_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _has_python(path: Path) -> bool:
    try:
        return bool(parse_page(path, _name(path)).blocks)
    except DocMarkupError:
        return True  # its test reports the mistake


PAGES = [path for path in ALL_PAGES if _has_python(path)]


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_page_examples_run(path: Path, tmp_path: Path) -> None:
    try:
        page = parse_page(path, _name(path))
        with services(page.needs) as env:
            run_page(page, tmp_path, env)
    except (DocMarkupError, DocExampleError) as failure:
        message = str(failure)  # it names the page, the block and its line: no traceback
    else:
        return
    pytest.fail(message, pytrace=False)


def test_the_docs_are_found() -> None:
    """README.md, the tutorial and the guides are collected (a moved docs/ would otherwise
    quietly test nothing)."""
    assert {"README.md", "docs/stores.md"} <= {_name(path) for path in ALL_PAGES}
    assert {"README.md", "docs/tutorial/04-event-store.md"} <= {_name(path) for path in PAGES}
