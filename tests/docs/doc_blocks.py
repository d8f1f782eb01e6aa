"""Reading the Python examples out of a Markdown page, with the page's markers.

Conventions (written once here; docs/README's "Documentation" section points to them):

* Every ```python block runs, in page order, in one interpreter per page, so what a block
  defines is there for the next one, as for a reader typing along.
* `<!-- illustrative: <why> -->` on the line before a block keeps it from running. The reason is
  required: a block that cannot run must say why (for example, it needs a Kafka broker).
* `<!-- output -->` before a fenced block (```text) makes it the expected standard output of
  the last python block before it. UUIDs, timestamps and memory addresses may differ.
* `<!-- needs: postgresql, redis -->` (anywhere in the page, usually near its top) names the
  services the page's code talks to: postgresql, redis, rabbitmq, nats, kafka.

Fences may be indented (inside a list or an admonition); the block is dedented by its fence's
indentation. Markup mistakes raise `DocMarkupError` naming the page and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("postgresql", "redis", "rabbitmq", "nats", "kafka")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_ILLUSTRATIVE = re.compile(r"<!--\s*illustrative\b:?(?P<reason>.*?)-->")
_OUTPUT = re.compile(r"<!--\s*output\s*-->")
_NEEDS = re.compile(r"<!--\s*needs:(?P<services>.*?)-->")
_RUNNABLE = {"python", "py"}


class DocMarkupError(ValueError):
    """A page's example markers are wrong; the message names the page and the line."""


@dataclass
class Block:
    """One python block: its number on the page (from 1) and the line of its first code line."""

    number: int
    line: int
    code: str
    illustrative: str | None = None
    expected_output: str | None = None
    output_line: int | None = None


@dataclass
class Page:
    path: Path
    name: str
    blocks: list[Block] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> list[Block]:
        return [block for block in self.blocks if block.illustrative is None]


@dataclass
class _Fence:
    info: str
    line: int  # 1-based line of the opening fence
    body: list[str]
    marker: str  # the HTML comment on the line before the fence, if any


def _fences(lines: list[str]) -> list[_Fence]:
    """Every fenced block of the page, with the comment line just above it."""
    fences: list[_Fence] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        first = i - len(body)  # 1-based line number of the fence line is `first`
        fences.append(_Fence(opening["info"].strip(), first, body, above))
        i += 1
    return fences


def _needs(name: str, lines: list[str]) -> list[str]:
    needs: list[str] = []
    for number, line in enumerate(lines, start=1):
        for found in _NEEDS.finditer(line):
            for service in filter(None, re.split(r"[\s,]+", found["services"])):
                if service not in SERVICES:
                    raise DocMarkupError(
                        f"{name} line {number}: unknown service {service!r} in <!-- needs -->; "
                        f"known: {', '.join(SERVICES)}"
                    )
                if service not in needs:
                    needs.append(service)
    return needs


def parse_page(path: Path, name: str) -> Page:
    """The page's python blocks and needs; `name` is how messages call the page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path, name, needs=_needs(name, lines))
    for fence in _fences(lines):
        language = fence.info.split(maxsplit=1)[0].lower() if fence.info else ""
        if _OUTPUT.search(fence.marker):
            _attach_output(page, fence)
        elif language in _RUNNABLE:
            page.blocks.append(_block(page, fence))
    return page


def _block(page: Page, fence: _Fence) -> Block:
    block = Block(len(page.blocks) + 1, fence.line + 1, "\n".join(fence.body) + "\n")
    marker = _ILLUSTRATIVE.search(fence.marker)
    if marker is not None:
        reason = marker["reason"].strip()
        if not reason:
            raise DocMarkupError(
                f"{page.name} line {fence.line}: block {block.number} is marked illustrative "
                "without a reason; write <!-- illustrative: why it cannot run -->"
            )
        block.illustrative = reason
    return block


def _attach_output(page: Page, fence: _Fence) -> None:
    target = page.blocks[-1] if page.blocks else None
    if target is None or target.illustrative is not None or target.expected_output is not None:
        raise DocMarkupError(
            f"{page.name} line {fence.line}: an <!-- output --> block must follow a python "
            "block that runs and has no other output block"
        )
    target.expected_output = "\n".join(fence.body)
    target.output_line = fence.line


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+\d{2}:\d{2}|Z)?")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def normalise_output(text: str) -> str:
    """Output as compared: ids, times and addresses masked, trailing blanks dropped."""
    text = _ADDRESS.sub("<addr>", _STAMP.sub("<time>", _UUID.sub("<uuid>", text)))
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
