"""The shipped database schema: one SQL file per table and backend, used by the stores, the docs
and the tests alike.

`get_schema("events", backend="postgresql")` returns DDL text runnable as one multi-statement
script; every statement is idempotent (`IF NOT EXISTS`). `get_template_path`, `list_schemas`,
`list_backends` and the `*_SCHEMA` name constants are eventsource-py 0.2.0's helpers.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

__all__ = [
    "CHECKPOINTS_SCHEMA",
    "DLQ_SCHEMA",
    "EVENTS_PARTITIONED_SCHEMA",
    "EVENTS_SCHEMA",
    "OUTBOX_SCHEMA",
    "RETENTION_SCHEMA",
    "SCHEMA_NAMES",
    "SNAPSHOTS_SCHEMA",
    "BackendName",
    "SchemaName",
    "get_all_schemas",
    "get_schema",
    "get_template_path",
    "list_backends",
    "list_schemas",
    "split_statements",
]

Backend = Literal["postgresql", "sqlite"]
BackendName = Backend
SchemaName = Literal[
    "events", "events_partitioned", "outbox", "checkpoints", "dlq", "snapshots", "retention",
    "all",
]

EVENTS_SCHEMA = "events"
EVENTS_PARTITIONED_SCHEMA = "events_partitioned"  # PostgreSQL only
OUTBOX_SCHEMA = "outbox"
CHECKPOINTS_SCHEMA = "checkpoints"
DLQ_SCHEMA = "dlq"
SNAPSHOTS_SCHEMA = "snapshots"
RETENTION_SCHEMA = "retention"  # stream metadata, the purge lease, the tombstone trigger

SCHEMA_NAMES: dict[str, tuple[str, ...]] = {
    "postgresql": (
        "events", "events_partitioned", "outbox", "checkpoints", "dlq", "snapshots", "retention"
    ),
    "sqlite": ("events", "outbox", "checkpoints", "dlq", "snapshots", "retention"),
}
# What "all" means: every table a store needs (the partitioned events table is an alternative).
_ALL: dict[str, tuple[str, ...]] = {
    "postgresql": ("events", "outbox", "checkpoints", "dlq", "snapshots", "retention"),
    "sqlite": ("events", "outbox", "checkpoints", "dlq", "snapshots", "retention"),
}


def get_schema(name: str, backend: Backend = "postgresql") -> str:
    """DDL for one table (or "all") on a backend."""
    if name == "all":
        return get_all_schemas(backend)
    return _template(name, backend).read_text()


def get_all_schemas(backend: Backend = "postgresql") -> str:
    """DDL for every table a store uses on a backend."""
    return "\n".join(get_schema(name, backend) for name in _ALL[_checked(backend)])


def get_template_path(name: str, backend: Backend = "postgresql") -> Path:
    """Where the SQL file of one table on a backend is installed (what `get_schema` reads)."""
    return Path(str(_template(name, backend)))


def list_schemas(backend: Backend = "postgresql") -> list[str]:
    """The tables with a schema on a backend, sorted ("all" is not one)."""
    return sorted(SCHEMA_NAMES[_checked(backend)])


def list_backends() -> list[str]:
    """The backends with schemas, sorted."""
    return sorted(SCHEMA_NAMES)


def _checked(backend: str) -> Backend:
    if backend not in SCHEMA_NAMES:
        raise ValueError(f"Unknown backend {backend!r}; choose 'postgresql' or 'sqlite'")
    return backend  # type: ignore[return-value]


def _template(name: str, backend: str) -> Traversable:
    """The shipped SQL file of one table; ValueError naming the unknown backend or table."""
    checked = _checked(backend)
    if name not in SCHEMA_NAMES[checked]:
        known = ", ".join(list_schemas(checked))
        raise ValueError(
            f"Unknown schema {name!r} for {backend}; known: {known} (get_schema also takes 'all')"
        )
    return resources.files(__package__).joinpath("sql", checked, f"{name}.sql")


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
