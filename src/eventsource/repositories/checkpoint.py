"""Checkpoints: how far each projection or subscription has read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import sql_backend_attributes
from eventsource.repositories import _checkpoint
from eventsource.repositories._checkpoint import *  # noqa: F403 - this module is its public path

if TYPE_CHECKING:
    from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
    from eventsource.repositories.sqlite import SQLiteCheckpointRepository
else:  # the SQL backends are offered here too, as they always were
    __getattr__ = sql_backend_attributes(__name__, "CheckpointRepository")

__all__ = [*_checkpoint.__all__, "PostgreSQLCheckpointRepository", "SQLiteCheckpointRepository"]  # noqa: PLE0604
