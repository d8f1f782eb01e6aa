"""Run a documentation page's examples and say exactly what went wrong.

A page runs in a fresh interpreter (`run_page.py`) with its working directory in a temporary
directory and, for the services it declares with `<!-- needs: ... -->`, these variables:

* postgresql: `EVENTSOURCE_PG_URL`, the SQLAlchemy URL (`postgresql+asyncpg://...`) of a new,
  empty database made for the page and dropped after it;
* redis, rabbitmq, nats: `EVENTSOURCE_REDIS_URL`, `EVENTSOURCE_RABBITMQ_URL`,
  `EVENTSOURCE_NATS_URL`, the test servers' URLs;
* kafka: `EVENTSOURCE_KAFKA_BOOTSTRAP`, from `EVENTSOURCE_TEST_KAFKA_BOOTSTRAP`.

A missing service skips the page locally and fails it under CI, exactly as the service tests do
(`require_postgres` and the `require_*` of tests/brokers.py); Kafka skips everywhere without
`EVENTSOURCE_TEST_KAFKA_BOOTSTRAP`, as its bus tests do.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from difflib import unified_diff
from pathlib import Path

from doc_blocks import Block, Page, normalise_output

RUN_PAGE = Path(__file__).with_name("run_page.py")
PAGE_TIMEOUT = 120.0  # seconds for a whole page


Provider = Generator[dict[str, str], None, None]  # the environment of one service, then its cleanup


class DocExampleError(AssertionError):
    """A page's example failed; the message names the page, the block and its line."""


def _provide_postgresql() -> Provider:
    from conftest import require_postgres

    url = require_postgres()
    database = f"docs_{uuid.uuid4().hex[:12]}"
    _admin(url, f'CREATE DATABASE "{database}"')
    base = url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield {"EVENTSOURCE_PG_URL": f"{base}/{database}"}
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _admin(url: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _broker(variable: str, name: str) -> Callable[[], Provider]:
    def provide() -> Provider:
        import brokers

        yield {variable: getattr(brokers, f"require_{name}")()}

    return provide


_PROVIDERS: dict[str, Callable[[], Provider]] = {
    "postgresql": _provide_postgresql,
    "redis": _broker("EVENTSOURCE_REDIS_URL", "redis"),
    "rabbitmq": _broker("EVENTSOURCE_RABBITMQ_URL", "rabbitmq"),
    "nats": _broker("EVENTSOURCE_NATS_URL", "nats"),
    "kafka": _broker("EVENTSOURCE_KAFKA_BOOTSTRAP", "kafka"),
}


@contextmanager
def services(needs: list[str]) -> Iterator[dict[str, str]]:
    """The environment variables for `needs` (skipping or failing like the service tests)."""
    env: dict[str, str] = {}
    providers = [_PROVIDERS[name]() for name in needs]
    try:
        for provider in providers:
            env.update(next(provider))
        yield env
    finally:
        for provider in providers:
            provider.close()


# The interpreter pages run in: this one, or (EVENTSOURCE_DOCS_PYTHON) a new user's virtualenv
# holding only what the pages tell a reader to install.
PAGE_PYTHON = os.environ.get("EVENTSOURCE_DOCS_PYTHON", sys.executable)


def run_page(
    page: Page, workdir: Path, env: dict[str, str] | None = None, timeout: float = PAGE_TIMEOUT
) -> None:
    """Run the page's blocks in one fresh interpreter in `workdir`; `DocExampleError` on the
    first block that raises, hangs, or prints other than its `<!-- output -->` block."""
    blocks = page.runnable
    if not blocks:
        return
    with tempfile.TemporaryDirectory(prefix="doc-page-") as scratch:  # not in the page's cwd
        spec, result_file = Path(scratch, "blocks.json"), Path(scratch, "result.json")
        spec.write_text(json.dumps({
            "page": str(page.path.resolve()),
            "blocks": [{"number": b.number, "line": b.line, "code": b.code} for b in blocks],
        }))
        try:
            done = subprocess.run(
                [PAGE_PYTHON, str(RUN_PAGE), str(spec), str(result_file)],
                cwd=workdir, env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            block = _numbered(blocks, _result(result_file).get("running"))
            raise DocExampleError(
                f"{_where(page, block)} did not finish within {timeout:.0f} s\n"
                + _output(_text(exc.stdout), _text(exc.stderr))
            ) from None
        result = _result(result_file)
    if done.returncode != 0:
        block = _numbered(blocks, result.get("failed", result.get("running")))
        raise DocExampleError(
            f"{_where(page, block)} failed (exit status {done.returncode})\n"
            + _output(done.stdout, done.stderr)
        )
    outputs = result["outputs"]
    assert isinstance(outputs, list), result
    for block, printed in zip(blocks, outputs, strict=True):
        _check_output(page, block, printed)


def _check_output(page: Page, block: Block, printed: str) -> None:
    if block.expected_output is None:
        return
    expected, actual = normalise_output(block.expected_output), normalise_output(printed)
    if expected != actual:
        diff = "\n".join(unified_diff(
            expected.splitlines(), actual.splitlines(),
            f"expected (line {block.output_line})", "printed", lineterm="",
        ))
        raise DocExampleError(
            f"{_where(page, block)} printed other than its <!-- output --> block "
            f"(UUIDs, times and addresses masked):\n{diff}"
        )


def _result(path: Path) -> dict[str, object]:
    try:
        found: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


def _numbered(blocks: list[Block], number: object) -> Block | None:
    return next((b for b in blocks if b.number == number), None)


def _where(page: Page, block: Block | None) -> str:
    if block is None:
        return f"{page.name} (before its first block)"
    return f"{page.name}, block {block.number} (line {block.line})"


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _output(stdout: str, stderr: str) -> str:
    return f"--- stdout\n{stdout.rstrip()}\n--- stderr\n{stderr.rstrip()}"
