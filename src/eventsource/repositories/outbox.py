"""The transactional outbox: events waiting to be published to other systems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import sql_backend_attributes
from eventsource.repositories import _outbox
from eventsource.repositories._outbox import *  # noqa: F403 - this module is its public path

if TYPE_CHECKING:
    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository
    from eventsource.repositories.sqlite import SQLiteOutboxRepository
else:  # the SQL backends are offered here too, as they always were
    __getattr__ = sql_backend_attributes(__name__, "OutboxRepository")

__all__ = [*_outbox.__all__, "PostgreSQLOutboxRepository", "SQLiteOutboxRepository"]  # noqa: PLE0604
