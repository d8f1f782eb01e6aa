"""What `db check` expects and `db init` creates: read from the shipped DDL itself.

The tables and columns come from `eventsource.migrations` (the one copy of the schema), so a
column added to a schema file is checked for without touching this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from eventsource.cli._backend import Backend, BackendName
from eventsource.cli._queries import table_columns
from eventsource.migrations import EVENTS_PARTITIONED_SCHEMA, get_schema, list_schemas

__all__ = ["TableState", "schema_names", "table_states"]

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\)", re.DOTALL)
_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+)")
_NOT_COLUMNS = frozenset({"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"})
_CONTINUED = " " * 8  # column definitions are indented by four spaces, continuations by eight


def schema_names(backend: BackendName) -> list[str]:
    """The schema files `db init` applies: every table a store uses."""
    return [name for name in list_schemas(backend) if name != EVENTS_PARTITIONED_SCHEMA]


@cache
def expected_tables(backend: BackendName) -> dict[str, frozenset[str]]:
    """Each table the shipped schema creates, with its columns."""
    tables: dict[str, set[str]] = {}
    for name in schema_names(backend):
        script = get_schema(name, backend)
        for table, body in _CREATE.findall(script):
            columns = tables.setdefault(table, set())
            for line in body.splitlines():
                if not line.strip() or line.startswith(_CONTINUED):
                    continue  # a blank line, or a constraint continued from the line above
                word = line.split()[0].strip('"')
                if word.upper() not in _NOT_COLUMNS and not word.startswith("--"):
                    columns.add(word)
        for table, column in _ADD_COLUMN.findall(script):
            tables.setdefault(table, set()).add(column)
    return {table: frozenset(columns) for table, columns in tables.items()}


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
