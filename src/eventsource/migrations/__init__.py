"""The shipped database schema: one SQL file per table and backend, used by the stores, the docs
and the tests alike.

`get_schema("events", backend="postgresql")` returns DDL text runnable as one multi-statement
script; every statement is idempotent (`IF NOT EXISTS`).
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

__all__ = ["SCHEMA_NAMES", "get_all_schemas", "get_schema", "split_statements"]

Backend = Literal["postgresql", "sqlite"]

SCHEMA_NAMES: dict[str, tuple[str, ...]] = {
    "postgresql": ("events", "events_partitioned", "outbox", "checkpoints", "dlq", "snapshots"),
    "sqlite": ("events", "outbox", "checkpoints", "dlq", "snapshots"),
}
# What "all" means: every table a store needs (the partitioned events table is an alternative).
_ALL: dict[str, tuple[str, ...]] = {
    "postgresql": ("events", "outbox", "checkpoints", "dlq", "snapshots"),
    "sqlite": ("events", "outbox", "checkpoints", "dlq", "snapshots"),
}


def get_schema(name: str, backend: Backend = "postgresql") -> str:
    """DDL for one table (or "all") on a backend."""
    if backend not in SCHEMA_NAMES:
        raise ValueError(f"Unknown backend {backend!r}; choose 'postgresql' or 'sqlite'")
    if name == "all":
        return get_all_schemas(backend)
    if name not in SCHEMA_NAMES[backend]:
        known = ", ".join((*SCHEMA_NAMES[backend], "all"))
        raise ValueError(f"Unknown schema {name!r} for {backend}; known: {known}")
    return resources.files(__package__).joinpath("sql", backend, f"{name}.sql").read_text()


def get_all_schemas(backend: Backend = "postgresql") -> str:
    """DDL for every table a store uses on a backend."""
    if backend not in _ALL:
        raise ValueError(f"Unknown backend {backend!r}; choose 'postgresql' or 'sqlite'")
    return "\n".join(get_schema(name, backend) for name in _ALL[backend])


def split_statements(script: str) -> list[str]:
    """Split a shipped script into statements (for drivers that run one at a time).

    Statements end with `;` at the end of a line; `$$`-quoted bodies are kept whole.
    """
    statements: list[str] = []
    current: list[str] = []
    in_dollar = False
    for line in script.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        if stripped.count("$$") % 2 == 1:
            in_dollar = not in_dollar
        if stripped.endswith(";") and not in_dollar:
            statements.append("\n".join(current).strip())
            current = []
    if current and "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements
