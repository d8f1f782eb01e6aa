"""`SQLiteEventStore` (placeholder until the durable-stores work lands)."""

from __future__ import annotations

from eventsource._optional import optional

SQLITE_AVAILABLE: bool = optional("aiosqlite") is not None
