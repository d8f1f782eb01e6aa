"""The docs collector itself: what it runs, what it skips, and what its failures say."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import DocMarkupError, parse_page
from docs_runner import DocExampleError, run_page


def page_of(tmp_path: Path, text: str) -> Path:
    """`text` (with ''' for fences) as tmp_path/page.md."""
    path = tmp_path / "page.md"
    path.write_text(text.replace("'''", "`" * 3))
    return path


def run(tmp_path: Path, text: str, timeout: float = 60) -> Path:
    """Run `text` as docs/page.md in a fresh working directory under `tmp_path`; that dir."""
    workdir = tmp_path / f"work{len(list(tmp_path.glob('work*')))}"
    workdir.mkdir()
    run_page(parse_page(page_of(tmp_path, text), "docs/page.md"), workdir, timeout=timeout)
    return workdir


def test_blocks_share_one_interpreter_and_run_as_main(tmp_path: Path) -> None:
    workdir = run(tmp_path, """# A page

'''python
import asyncio
from pathlib import Path

async def main():
    Path("made.txt").write_text("here")

if __name__ == "__main__":
    asyncio.run(main())
'''

Later on the page:

'''python
assert Path("made.txt").read_text() == "here"
'''
""")
    assert (workdir / "made.txt").read_text() == "here"


def test_a_failing_block_is_named_with_its_page_and_line(tmp_path: Path) -> None:
    text = """# A page

'''python
value = 1
'''

'''bash
echo not python
'''

'''python
def broken():
    raise ValueError("the example is wrong")

broken()
'''
"""
    with pytest.raises(DocExampleError) as failure:
        run(tmp_path, text)
    message = str(failure.value)
    assert message.startswith("docs/page.md, block 2 (line 12) failed")
    assert "ValueError: the example is wrong" in message
    # The traceback points into the page itself, at the page's own line numbers.
    assert f'File "{(tmp_path / "page.md").resolve()}", line 13, in broken' in message


def test_illustrative_blocks_do_not_run_but_need_a_reason(tmp_path: Path) -> None:
    run(tmp_path, """
<!-- illustrative: needs a Kafka broker, which no machine here has -->
'''python
raise RuntimeError("must not run")
'''
""")
    unexplained = page_of(tmp_path, "\n<!-- illustrative: -->\n'''python\npass\n'''\n")
    with pytest.raises(DocMarkupError, match=r"docs/page.md line 3: block 1 .* without a reason"):
        parse_page(unexplained, "docs/page.md")


def test_output_blocks_are_compared_with_what_the_block_printed(tmp_path: Path) -> None:
    page = """
'''python
from uuid import uuid4
print("id:", uuid4())
print("{}")
'''

<!-- output -->
'''text
id: 0b5a1a4e-3c43-4a64-9a57-5e2d0f4f8a11
{}
'''
"""
    run(tmp_path, page)
    with pytest.raises(DocExampleError, match=r"block 1 \(line 3\) printed other than"):
        run(tmp_path, page.replace("\n{}\n", "\n{'a': 1}\n"))


def test_blocks_inside_admonitions_are_dedented(tmp_path: Path) -> None:
    path = page_of(tmp_path, """
!!! note "The code so far"

    '''python
    total = sum([1, 2])
    assert total == 3
    '''
""")
    (block,) = parse_page(path, "docs/page.md").blocks
    assert block.code == "total = sum([1, 2])\nassert total == 3\n"
    assert block.line == 5


def test_a_hanging_block_is_named(tmp_path: Path) -> None:
    with pytest.raises(DocExampleError, match=r"block 2 \(line 7\) did not finish within 3 s"):
        run(tmp_path, """
'''python
import time
'''

'''python
time.sleep(60)
'''
""", timeout=3)


def test_unknown_services_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DocMarkupError, match="unknown service 'mongodb'"):
        parse_page(page_of(tmp_path, "<!-- needs: postgresql, mongodb -->\n"), "docs/page.md")
    needs = parse_page(page_of(tmp_path, "<!-- needs: postgresql, redis -->\n"), "p").needs
    assert needs == ["postgresql", "redis"]
