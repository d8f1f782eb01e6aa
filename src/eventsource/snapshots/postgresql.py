"""`PostgreSQLSnapshotStore`: snapshots in PostgreSQL, through SQLAlchemy async.

The statements are shared with SQLite (`snapshots/_sql.py`) and run by the PostgreSQL executor
of the repositories: every call is its own transaction on a connection of the caller's engine.
The `snapshots` table (and the `tenant_id` column, on tables made from the documented columns)
is created on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource.repositories.postgresql import _PostgreSQLExecutor
from eventsource.snapshots._sql import SQLSnapshotStore
from eventsource.snapshots.exceptions import SnapshotError

if TYPE_CHECKING:
    from eventsource.repositories.postgresql import Connectable

__all__ = ["PostgreSQLSnapshotStore"]


class PostgreSQLSnapshotStore(SQLSnapshotStore):
    """Snapshots in the `snapshots` table, reached through an `async_sessionmaker` (an
    `AsyncEngine` or an `AsyncConnection` work too)."""

    def __init__(self, session_factory: Connectable, enable_tracing: bool = True) -> None:
        self._session_factory = session_factory
        super().__init__(
            _PostgreSQLExecutor(session_factory, "snapshots", SnapshotError), enable_tracing
        )

    @property
    def session_factory(self) -> Connectable:
        return self._session_factory

    async def close(self) -> None:
        """Nothing to release: the engine and its connections belong to the caller."""
