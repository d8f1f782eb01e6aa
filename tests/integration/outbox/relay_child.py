"""A relay process for the kill test: publishes an outbox to a Redis stream, one event per
call, and (when told) hangs after its Nth event, leaving the rest of that batch unpublished and
the whole batch unmarked, until the test kills it with SIGKILL.

Usage: python relay_child.py BACKEND LOCATION REDIS_URL STREAM_PREFIX MARKER HANG_AFTER
  BACKEND   "sqlite" (LOCATION = database file) or "postgresql" (LOCATION = "url schema")
  MARKER    file written once the relay hangs
  HANG_AFTER  0 = never hang
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from outbox_brokers import Broker
from outbox_support import register

from eventsource.events.base import DomainEvent
from eventsource.repositories.outbox_relay import OutboxRelay


class OneByOne:
    """Publishes each event in a call of its own, so a kill can land mid-batch."""

    def __init__(self, bus: Any, marker: Path, hang_after: int) -> None:
        self.bus = bus
        self.marker = marker
        self.hang_after = hang_after
        self.sent = 0

    async def publish(self, events: list[DomainEvent]) -> None:
        for event in events:
            await self.bus.publish([event])
            self.sent += 1
            if self.sent == self.hang_after:
                self.marker.write_text(str(self.sent))
                await asyncio.Event().wait()  # until killed


async def open_outbox(backend: str, location: str) -> Any:
    if backend == "sqlite":
        from eventsource.repositories.sqlite import SQLiteOutboxRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        store = SQLiteEventStore(location, enable_tracing=False)
        await store.initialize()
        return SQLiteOutboxRepository(store, enable_tracing=False)
    from sqlalchemy.ext.asyncio import create_async_engine

    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository

    url, schema = location.split()
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    return PostgreSQLOutboxRepository(engine, enable_tracing=False)


async def main(backend: str, location: str, url: str, prefix: str, marker: str, hang: str) -> None:
    register()
    bus = OneByOne(Broker("redis", url, prefix).bus(), Path(marker), int(hang))
    relay = OutboxRelay(
        await open_outbox(backend, location), bus, batch_size=10, poll_interval=0.05
    )
    await relay.run_forever()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
