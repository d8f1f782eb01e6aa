"""SQL repositories written once: statements, row mapping and logic shared by SQLite and
PostgreSQL (`checkpoint`, `dlq`, `outbox` here; snapshots in `snapshots/_sql.py`). Driver-free:
a backend supplies an `Executor` that runs these statements.

Every statement uses named `:param` placeholders (sqlite3 and SQLAlchemy `text()` both take
them) and SQL both dialects accept. Values go in as Python objects (the executor converts UUIDs
and datetimes for its driver); values come out as the driver returns them, and the mapping
below accepts both the native types (PostgreSQL) and their text forms (SQLite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

__all__ = ["Executor", "Params", "Row", "as_datetime", "as_iso", "as_uuid", "utc_now"]

Params = Mapping[str, object]
Row = Sequence[Any]


class Executor(Protocol):
    """Runs one statement per call in its own transaction (or the caller's, see backends)."""

    async def fetch(self, sql: str, params: Params) -> list[Row]: ...

    async def execute(self, sql: str, params: Params) -> int:
        """Run a write; the number of rows it touched."""

    async def has_table(self, name: str) -> bool: ...

    async def execute_on(self, connection: Any, sql: str, params: Params) -> None:
        """Run a write through the caller's connection, inside the caller's transaction."""

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text value of top-level `key` of the JSON in `column` (NULL if none)."""


def as_uuid(value: Any) -> UUID | None:
    """A UUID column's value (native or text) as a UUID."""
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column's value (native or ISO text) as a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def as_iso(value: Any) -> str | None:
    """A timestamp column's value as ISO text."""
    moment = as_datetime(value)
    return moment.isoformat() if moment is not None else None


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
