"""What `db check` expects and `db init` creates: read from the shipped DDL itself.

The tables and columns come from `eventsource.migrations` (the one copy of the schema) and,
for the tables features create on first use (DCB tags, copy-job progress), from those
features' own DDL, so a column added to a schema is checked for without touching this module.

Required: the tables a store, its subscriptions, outbox, dead letters and snapshots use.
Optional features: retention (`db init` creates it; stores read without it), DCB and
transfer (created by `DcbEventStore` and copy jobs on first use). An optional feature's
tables may all be missing; once one exists, every one of them must, with every column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from eventsource.cli._backend import Backend, BackendName
from eventsource.cli._queries import table_columns
from eventsource.migrations import (
    EVENTS_PARTITIONED_SCHEMA,
    RETENTION_SCHEMA,
    get_schema,
    list_schemas,
)
from eventsource.migrations.upgrade import ddl_tables, tables

__all__ = ["FEATURES", "TableState", "schema_names", "table_states"]

FEATURES = {
    "retention": "stream retention; `db init` creates it",
    "dcb": "dynamic consistency boundaries; the DCB store creates it on first use",
    "transfer": "copy jobs; `transfer copy` creates it in the target on first use",
}
"""The optional features, and where their tables come from."""


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


@cache
def feature_tables(backend: BackendName) -> dict[str, dict[str, frozenset[str]]]:
    """Each optional feature's tables, with their columns."""
    from eventsource._sql import dcb_postgresql, dcb_sqlite, transfer

    dcb = dcb_sqlite.DDL if backend == "sqlite" else dcb_postgresql.DDL
    scripts = {
        "retention": get_schema(RETENTION_SCHEMA, backend),
        "dcb": dcb,
        "transfer": "\n;\n".join(transfer.DDL),
    }
    return {
        feature: {table: frozenset(columns) for table, columns in ddl_tables(script).items()}
        for feature, script in scripts.items()
    }


@dataclass(frozen=True)
class TableState:
    """One expected table as found: missing, lacking columns, or complete. `feature` names
    the optional feature it belongs to (None: required); `optional` is true while none of
    that feature's tables exists (then its absence is fine)."""

    table: str
    exists: bool
    missing_columns: tuple[str, ...]
    feature: str | None = None
    optional: bool = False

    @property
    def complete(self) -> bool:
        """The table exists with every column."""
        return self.exists and not self.missing_columns

    @property
    def ok(self) -> bool:
        return self.complete or (self.optional and not self.exists)

    @property
    def by_init(self) -> bool:
        """`db init` creates it (the first-use features' own code creates theirs)."""
        return self.feature in (None, RETENTION_SCHEMA)

    def describe(self) -> str:
        if not self.exists:
            if self.optional:
                return f"not created (optional: {FEATURES[self.feature or '']})"
            if self.feature is not None:
                return f"missing ({self.feature} is partly set up: its other tables exist)"
            return "missing"
        if self.missing_columns:
            return f"lacks columns {', '.join(self.missing_columns)}"
        return "ok"


async def table_states(db: Backend) -> list[TableState]:
    """Every expected table as the database has it: the required ones, then each optional
    feature's."""
    required = {
        table: columns for table, columns in expected_tables(db.kind).items()
        if table not in feature_tables(db.kind)[RETENTION_SCHEMA]
    }
    features = feature_tables(db.kind)
    wanted = [*required, *(table for each in features.values() for table in each)]
    present = await table_columns(db, sorted(wanted))
    groups: list[tuple[str | None, dict[str, frozenset[str]]]] = [(None, required)]
    groups += list(features.items())
    states = []
    for feature, group in groups:
        unused = feature is not None and not any(table in present for table in group)
        states += [
            TableState(
                table,
                table in present,
                tuple(sorted(columns - present[table])) if table in present else (),
                feature,
                unused,
            )
            for table, columns in sorted(group.items())
        ]
    return states
