"""A process running a DatabaseProjection over split events from its checkpoint (killed by
tests/integration/evolution/test_split_crash.py).

Usage: python split_crash_child.py BACKEND LOCATION GATE
  BACKEND   "postgresql" (LOCATION = "url schema") or "sqlite" (LOCATION = database file)
  GATE      a file path: until it exists, the handler of the part moving a customer to "GATE"
            writes GATE + ".stuck" and waits forever, in the middle of that split's parts
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from evo_support import CustomerMoved, CustomerRenamed, CustomerSignedUp, evolution
from sqlalchemy import text
from subscription_crash_child import open_backend

from eventsource import DomainEvent, default_registry
from eventsource.evolution import default_upcasters
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager

_APPLY = text(
    "INSERT INTO rm_parts (event_id, applications) VALUES (:id, 1) "
    "ON CONFLICT (event_id) DO UPDATE SET applications = rm_parts.applications + 1"
)
PAGE = 8


class PartsApplied(DatabaseProjection):
    """Counts applications per event id; stuck on the "GATE" part until the gate opens."""

    gate = Path("/nonexistent")

    async def _apply(self, conn: Any, event: DomainEvent) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})

    @handles(CustomerSignedUp)
    async def _signed_up(self, conn: Any, event: CustomerSignedUp) -> None:
        await self._apply(conn, event)

    @handles(CustomerRenamed)
    async def _renamed(self, conn: Any, event: CustomerRenamed) -> None:
        await self._apply(conn, event)

    @handles(CustomerMoved)
    async def _moved(self, conn: Any, event: CustomerMoved) -> None:
        await self._apply(conn, event)
        if event.city == "GATE" and not self.gate.exists():
            await asyncio.to_thread(Path(f"{self.gate}.stuck").write_text, "mid-split")
            await asyncio.Event().wait()


async def run(backend: str, location: str, gate: str) -> None:
    """Follow the store from the checkpoint forever (the test kills this process)."""
    evolution(default_registry, default_upcasters)  # this process reads with the defaults
    PartsApplied.gate = Path(gate)
    async with open_backend(backend, location) as (store, sessions, checkpoints):
        manager = SubscriptionManager(store, None, checkpoints, enable_tracing=False)
        manager.poll_interval = 0.05
        config = SubscriptionConfig(start_from="checkpoint", batch_size=PAGE)
        await manager.subscribe(PartsApplied(sessions, checkpoints), config)
        async with manager:
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
