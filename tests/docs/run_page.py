"""Run one page's python blocks in order in this (fresh) interpreter, as one `__main__` module.

Usage: python run_page.py BLOCKS.json RESULT.json

BLOCKS.json: {"page": path, "blocks": [{"number": n, "line": first code line, "code": ...}]}.
Each block is compiled under the page's own path, padded so that line numbers in tracebacks
are the page's. RESULT.json is rewritten before each block (`running`: the block in hand, so a
hang or a crash still names it) and at the end with every block's standard output.
Exit status 1 when a block raised; its traceback is on standard error.
"""

from __future__ import annotations

import io
import json
import sys
import traceback
import types
from pathlib import Path
from typing import TextIO


class _Tee(io.TextIOBase):
    """Standard output that also keeps a copy of what the current block printed."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()


def main(blocks_file: str, result_file: str) -> int:
    spec = json.loads(Path(blocks_file).read_text(encoding="utf-8"))
    page, result = spec["page"], Path(result_file)
    module = types.ModuleType("__main__")  # what a script run by hand would get
    module.__file__ = page
    sys.modules["__main__"] = module
    outputs: list[str] = []
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    for block in spec["blocks"]:
        result.write_text(json.dumps({"running": block["number"], "outputs": outputs}))
        print(f"--- block {block['number']} (line {block['line']})", file=sys.stderr, flush=True)
        tee.copy = io.StringIO()
        source = "\n" * (block["line"] - 1) + block["code"]
        try:
            exec(compile(source, page, "exec", dont_inherit=True), module.__dict__)
        except BaseException as exc:  # SystemExit too: a page must not end the run early
            sys.stdout.flush()
            frames = traceback.TracebackException.from_exception(exc)
            frames.stack = traceback.StackSummary.from_list(frames.stack[1:])  # not this file
            sys.stderr.write("".join(frames.format()))
            result.write_text(json.dumps({"failed": block["number"], "outputs": outputs}))
            return 1
        finally:
            sys.stdout.flush()
        outputs.append(tee.copy.getvalue())
    result.write_text(json.dumps({"failed": None, "outputs": outputs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
