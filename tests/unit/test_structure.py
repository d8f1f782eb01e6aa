"""The package's shape, checked from its source: module size, import cycles and layering.

Imports are read with `ast`, never executed. An import counts when it runs at import time of
its module: at module level, in a class body, or under `if`/`try` at module level, which
includes `if TYPE_CHECKING:` blocks (a cycle that only type checkers see still ties the modules
together). An import inside a function body is lazy and does not count for cycles; the layering
rule for `_sql/` counts it all the same (a lazy import still makes `_sql/` know of stores).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import eventsource

ROOT = Path(eventsource.__path__[0])
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    """One import statement's target module, and whether it runs when its module is imported."""

    target: str
    eager: bool
    line: int


def _module_name(path: Path) -> str:
    parts = ["eventsource", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _statements(tree: ast.AST, eager: bool = True) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement, flagged eager unless it sits inside a function body."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, eager
        lazy = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _statements(node, eager and not lazy)


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _targets(module: str, path: Path, node: ast.stmt) -> list[str]:
    """The package modules an import statement names (a `from` name may itself be a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = _base(module, path, node)
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
        for alias in node.names
    ]


def _imports(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        Import(target, eager, node.lineno)
        for node, eager in _statements(tree)
        for target in _targets(module, path, node)
        if target in MODULES and target != module
    ]


def _graph() -> dict[str, set[str]]:
    return {module: {imp.target for imp in _imports(module) if imp.eager} for module in MODULES}


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module, as a chain of modules."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {component}")  # unreachable for an SCC


def test_the_cycle_finder_finds_a_cycle_and_ignores_a_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert _components(graph) == [["a", "b", "c"]]
    assert _cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert _components({"a": {"b"}, "b": set()}) == []


def test_imports_are_resolved_relative_and_through_from_names() -> None:
    imports = {imp.target for imp in _imports("eventsource.stores.sqlite")}
    assert "eventsource.stores.base" in imports


def test_no_module_is_over_500_lines() -> None:
    sizes = {
        module: len(path.read_text(encoding="utf-8").splitlines())
        for module, path in MODULES.items()
    }
    too_long = sorted(
        f"{module} ({lines} lines)" for module, lines in sizes.items() if lines > MAX_LINES
    )
    assert too_long == [], f"modules over {MAX_LINES} lines:\n  " + "\n  ".join(too_long)


def test_no_import_cycle_among_package_modules() -> None:
    graph = _graph()
    cycles = [" -> ".join(_cycle(graph, component)) for component in _components(graph)]
    components = [", ".join(component) for component in _components(graph)]
    assert cycles == [], (
        "import cycles (module-level imports, TYPE_CHECKING included):\n  "
        + "\n  ".join(cycles)
        + "\nstrongly connected groups:\n  "
        + "\n  ".join(components)
    )


def test_sql_helpers_import_nothing_from_stores() -> None:
    upward = sorted(
        {
            f"{module}:{imp.line} imports {imp.target}"
            for module in MODULES
            if module.startswith("eventsource._sql")
            for imp in _imports(module)
            if imp.target == "eventsource.stores" or imp.target.startswith("eventsource.stores.")
        }
    )
    assert upward == [], "_sql/ imports from stores/:\n  " + "\n  ".join(upward)
