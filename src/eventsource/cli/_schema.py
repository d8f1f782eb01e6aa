"""What `db check` expects and `db init` creates: read from the shipped DDL itself.

The tables and columns come from `eventsource.migrations` (the one copy of the schema), so a
column added to a schema file is checked for without touching this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from eventsource.cli._backend import Backend, BackendName
from eventsource.cli._queries import table_columns
from eventsource.migrations import EVENTS_PARTITIONED_SCHEMA, list_schemas
from eventsource.migrations.upgrade import tables

__all__ = ["TableState", "schema_names", "table_states"]



def schema_names(backend: BackendName) -> list[str]:
    """The schema files `db init` applies: every table a store uses."""
    return [name for name in list_schemas(backend) if name != EVENTS_PARTITIONED_SCHEMA]


@cache
def expected_tables(backend: BackendName) -> dict[str, frozenset[str]]:
    """Each table the shipped schema creates, with its columns."""
    expected: dict[str, set[str]] = {}
    for name in schema_names(backend):
        for table, columns in tables(name, backend).items():
            expected.setdefault(table, set()).update(columns)
    return {table: frozenset(columns) for table, columns in expected.items()}


@dataclass(frozen=True)
class TableState:
    """One expected table as found: missing, lacking columns, or complete."""

    table: str
    exists: bool
    missing_columns: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.exists and not self.missing_columns

    def describe(self) -> str:
        if not self.exists:
            return "missing"
        if self.missing_columns:
            return f"lacks columns {', '.join(self.missing_columns)}"
        return "ok"


async def table_states(db: Backend) -> list[TableState]:
    """Every expected table as the database has it."""
    expected = expected_tables(db.kind)
    present = await table_columns(db, sorted(expected))
    return [
        TableState(
            table,
            table in present,
            tuple(sorted(columns - present[table])) if table in present else (),
        )
        for table, columns in sorted(expected.items())
    ]
