"""Code written against the public API type-checks under `mypy --strict`, as a user runs it.

One mypy run (no project config, so no pydantic plugin; the installed package as a user's
environment sees it) checks: the README's and docs/*.md's python blocks, examples/, a module
revealing the type of every public name of every package (none may be `Any`), and negative
lines that mypy must reject -- proof that the names are typed, not merely importable.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from extras import NO_EXTRAS, import_extra

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (  # the packages and the modules API.md gives as import paths
    "eventsource",
    *(f"eventsource.{name}" for name in (
        "aggregates", "aggregates.base", "aggregates.repository",
        "bus", "bus.interface", "bus.kafka", "bus.memory", "bus.nats", "bus.rabbitmq", "bus.redis",
        "events", "events.base", "events.registry", "exceptions", "migrations", "observability",
        "projections", "projections.base", "projections.checkpoint_manager",
        "projections.decorators", "projections.dlq_manager", "projections.retry", "protocols",
        "repositories", "repositories.checkpoint", "repositories.dlq", "repositories.outbox",
        "repositories.outbox_relay", "snapshots", "stores", "stores.in_memory",
        "stores.interface", "stores.postgresql", "stores.sqlite", "subscriptions",
        "subscriptions.config", "subscriptions.error_handling", "subscriptions.health",
        "subscriptions.manager", "subscriptions.retry", "sync", "tenancy", "testing", "types",
    )),
)
# Lines mypy must reject, with the error code: a public name typed `Any` would pass them.
NEGATIVE = """\
from eventsource import (
    DatabaseProjection,
    OutboxRelay,
    PostgreSQLEventStore,
    RedisEventBus,
    SQLiteEventStore,
)
from eventsource.stores import SQLiteEventStore as StoresSQLiteEventStore

SQLiteEventStore(123)  # arg-type
StoresSQLiteEventStore(123)  # arg-type
PostgreSQLEventStore(123)  # arg-type
RedisEventBus(123)  # arg-type
OutboxRelay(123, 456)  # arg-type
DatabaseProjection(None, checkpoint_repo=123)  # arg-type
from eventsource import SQLiteEventstore  # attr-defined
"""


def documentation_snippets() -> dict[str, str]:
    """The README's and docs/*.md's python blocks, and every example, by module name.

    A page's blocks run in one interpreter, in order (tests/docs/doc_blocks.py), so they are
    checked as one module, `doc_<page>`, as the reader types them along. A block whose first
    line names its file (`# bank.py`) is that module instead, so that a later block can
    import it, as the page tells the reader to save it."""
    snippets: dict[str, str] = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.M | re.S)
        along: list[str] = []
        for block in blocks:
            named = re.match(r"# (\w+)\.py\n", block)
            if named:
                snippets[named[1]] = block
            else:
                along.append(block)
        if along:
            snippets[f"doc_{page.stem.lower().replace('-', '_')}"] = "\n".join(along)
    for example in sorted((ROOT / "examples").glob("*.py")):
        snippets[f"example_{example.stem}"] = example.read_text()
    return snippets


def public_names() -> dict[str, list[str]]:
    """Each package's public names: its `__all__` (the top level adds the SQLite names)."""
    names = {package: list(importlib.import_module(package).__all__) for package in PACKAGES}
    names["eventsource"] += sorted(importlib.import_module("eventsource")._SQLITE_EXPORTS)
    return names


def reveal_module(names: dict[str, list[str]]) -> str:
    lines = []
    for package, members in names.items():
        for name in members:
            alias = f"{package.replace('.', '_')}__{name}"
            lines.append(f"from {package} import {name} as {alias}")
            lines.append(f"reveal_type({alias})")
    return "\n".join(lines) + "\n"


def run_mypy(directory: Path) -> list[str]:
    """mypy's error and note lines for every module in `directory`."""
    cache = ROOT / ".mypy_cache" / "user-code"  # kept between runs: a cold check takes long
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "", "--cache-dir",
         str(cache), "--no-error-summary", "--show-error-codes", "--python-version", "3.11",
         *sorted(p.name for p in directory.glob("*.py"))],
        cwd=directory, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    import_extra("mypy")
    directory = tmp_path_factory.mktemp("user_code")
    for module, text in documentation_snippets().items():
        (directory / f"{module}.py").write_text(text)
    (directory / "public_names.py").write_text(reveal_module(public_names()))
    (directory / "negative.py").write_text(NEGATIVE)
    return run_mypy(directory)


def test_documentation_and_examples_type_check(mypy_output: list[str]) -> None:
    snippets = documentation_snippets()
    assert {"doc_readme", "example_demo"} <= set(snippets)
    errors = [line for line in mypy_output if not line.startswith(("negative.py", "public_names"))]
    assert errors == []


def test_every_public_name_has_a_real_type(mypy_output: list[str]) -> None:
    revealed = [line for line in mypy_output if line.startswith("public_names.py")]
    expected = sum(len(members) for members in public_names().values())
    assert len(revealed) == expected, [line for line in revealed if ": error:" in line]
    untyped = [line for line in revealed if line.endswith('Revealed type is "Any"')]
    assert untyped == []


def test_mypy_rejects_misuse_of_public_names(mypy_output: list[str]) -> None:
    expected = {
        (number, line.rsplit("# ", 1)[1])
        for number, line in enumerate(NEGATIVE.splitlines(), 1)
        if "  # " in line
    }
    found = set()
    for line in mypy_output:
        match = re.match(r"negative\.py:(\d+): error: .*\[([\w-]+)\]$", line)
        if match:
            found.add((int(match[1]), match[2]))
    assert found == expected, "\n".join(x for x in mypy_output if x.startswith("negative"))


def test_documented_imports_run() -> None:
    """The eventsource imports of every snippet also work at run time (mypy alone sees the
    names declared for type checkers)."""
    for module, text in documentation_snippets().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eventsource"):
                try:
                    exec(ast.unparse(node), {})  # the statement as the user wrote it
                except ImportError as exc:
                    if NO_EXTRAS and not (exc.name or "eventsource").startswith("eventsource"):
                        continue  # the core run: a module of an extra (click, ...) is missing
                    raise AssertionError(f"{module}: {exc}") from exc
