"""Docstrings and comments say the fact itself: no pointers to an internal specification.

Users read the docstrings (in their editor and on the reference pages) but never see the
specification the package was built to, so a reference like "(API.md §11.3)" tells them nothing
and goes stale as the text it names changes. This test keeps such references from coming back.
"""

from __future__ import annotations

from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "eventsource"
FORBIDDEN = ("API.md", "§")


def _offending_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line of `text` that mentions a forbidden marker."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if any(marker in line for marker in FORBIDDEN)
    ]


def test_the_check_finds_a_specification_reference() -> None:
    text = '"""Settings of a bus.\n\nSee API.md §11.3 for the fields."""\nX = 1  # §2\n'
    assert _offending_lines(text) == [
        (3, "See API.md §11.3 for the fields.\"\"\""),
        (4, "X = 1  # §2"),
    ]
    assert _offending_lines('"""Settings of a `RedisEventBus`."""\n') == []


def test_no_module_mentions_the_internal_specification() -> None:
    modules = sorted(SOURCE.rglob("*.py"))
    assert len(modules) > 50, f"expected the package's modules under {SOURCE}"
    found = [
        f"{path.relative_to(SOURCE.parent)}:{number}: {line}"
        for path in modules
        for number, line in _offending_lines(path.read_text(encoding="utf-8"))
    ]
    assert not found, "say the fact instead of citing API.md:\n" + "\n".join(found)
