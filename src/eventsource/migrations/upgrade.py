"""The one way a table is probed and created or upgraded, for every component and backend.

Everything is read from the shipped DDL (`eventsource.migrations`), so a column added to a
schema file is checked for and created without touching code:

* `tables(name, backend)`: each table a schema file creates, with its columns.
* `probe_columns(name)`: the columns whose presence means a table is current -- those the
  PostgreSQL file adds with `ALTER TABLE ... ADD COLUMN IF NOT EXISTS`, else the table's last
  column. `postgresql_probe(names)` is one statement answering "current?" for several files;
  `postgresql_upgrade(names, lock_key)` the statements that then create or upgrade them.
* `upgrade_sqlite(db, name)`: runs a SQLite file statement by statement and adds the columns
  SQLite cannot add idempotently in DDL (`SQLITE_LATER_COLUMNS`).

Driver-free: the PostgreSQL side returns SQL for the caller's driver; the SQLite side takes a
stdlib `sqlite3` connection (the one aiosqlite runs in its thread).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from functools import cache

from eventsource.migrations import BackendName, get_schema, split_statements

__all__ = [
    "SQLITE_LATER_COLUMNS",
    "ddl_tables",
    "postgresql_probe",
    "postgresql_upgrade",
    "probe_columns",
    "tables",
    "upgrade_sqlite",
]

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\)", re.DOTALL)
_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+)")
_NOT_COLUMNS = frozenset({"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"})
_CONTINUED = " " * 8  # column definitions are indented by four spaces, continuations by eight

SQLITE_LATER_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    # Columns added after a table's first release: SQLite has no ADD COLUMN IF NOT EXISTS, so
    # these are added here to tables made by older versions (`upgrade_sqlite`).
    "checkpoints": (("projection_checkpoints", "cursor TEXT"),),
    "snapshots": (("snapshots", "tenant_id TEXT"),),
}


def _columns(body: str) -> list[str]:
    """The column names of a `CREATE TABLE` body, in order."""
    found = []
    for line in body.splitlines():
        if not line.strip() or line.startswith(_CONTINUED):
            continue  # a blank line, or a constraint continued from the line above
        word = line.split()[0].strip('"')
        if word.upper() not in _NOT_COLUMNS and not word.startswith("--"):
            found.append(word)
    return found


@cache
def tables(name: str, backend: BackendName = "postgresql") -> dict[str, tuple[str, ...]]:
    """Each table schema file `name` creates on `backend`, with its columns in order (those
    added by `ALTER TABLE` last)."""
    return ddl_tables(get_schema(name, backend))


def ddl_tables(script: str) -> dict[str, tuple[str, ...]]:
    """Each table a DDL script creates (`CREATE TABLE IF NOT EXISTS`, written as the schema
    files are), with its columns in order (those added by `ALTER TABLE` last)."""
    found: dict[str, list[str]] = {}
    for table, body in _CREATE.findall(script):
        found.setdefault(table, []).extend(_columns(body))
    for table, column in _ADD_COLUMN.findall(script):
        columns = found.setdefault(table, [])
        if column not in columns:
            columns.append(column)
    return {table: tuple(columns) for table, columns in found.items()}


@cache
def probe_columns(name: str) -> tuple[tuple[str, str], ...]:
    """(table, column) pairs whose presence means schema file `name` is applied and current."""
    added = tuple(_ADD_COLUMN.findall(get_schema(name, "postgresql")))
    if added:
        return added
    return tuple((table, columns[-1]) for table, columns in tables(name).items())


def postgresql_probe(names: Sequence[str]) -> str:
    """One PostgreSQL statement whose one value is true when the tables of schema files `names`
    exist with their current columns (then nothing needs applying)."""
    pairs = [pair for name in names for pair in probe_columns(name)]
    wanted = ", ".join(f"('{table}', '{column}')" for table, column in pairs)
    return (
        "SELECT count(*) = "
        f"{len(pairs)} FROM pg_attribute a JOIN (VALUES {wanted}) AS w (tab, col) "
        "ON a.attrelid = to_regclass(w.tab) AND a.attname = w.col WHERE NOT a.attisdropped"
    )


def postgresql_upgrade(names: Sequence[str], lock_key: int) -> list[str]:
    """The statements that create or upgrade the tables of schema files `names`, to run in one
    transaction: first a transaction-level advisory lock on `lock_key`, so one process at a
    time changes the schema (every component passes the same key), then each file's DDL."""
    statements = [f"SELECT pg_advisory_xact_lock({int(lock_key)})"]
    for name in names:
        statements.extend(split_statements(get_schema(name, "postgresql")))
    return statements


def upgrade_sqlite(db: sqlite3.Connection, name: str) -> None:
    """Create the tables of SQLite schema file `name`, and any column added since, on `db`.

    Statement by statement: every one is idempotent, and this leaves a caller's open
    transaction alone (`executescript` would commit it); commits only what it began.
    """
    ours = not db.in_transaction
    for statement in split_statements(get_schema(name, "sqlite")):
        db.execute(statement)
    for table, column in SQLITE_LATER_COLUMNS.get(name, ()):
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    if ours and db.in_transaction:
        db.commit()
