"""The dead-letter queue: events a projection could not handle, kept with their error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import sql_backend_attributes
from eventsource.repositories import _dlq
from eventsource.repositories._dlq import *  # noqa: F403 - this module is its public path

if TYPE_CHECKING:
    from eventsource.repositories.postgresql import PostgreSQLDLQRepository
    from eventsource.repositories.sqlite import SQLiteDLQRepository
else:  # the SQL backends are offered here too, as they always were
    __getattr__ = sql_backend_attributes(__name__, "DLQRepository")

__all__ = [*_dlq.__all__, "PostgreSQLDLQRepository", "SQLiteDLQRepository"]  # noqa: PLE0604
