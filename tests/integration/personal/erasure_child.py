"""A second process for test_personal_erasure_process: reads an order with its own key cache
(time-to-live an hour, so only PostgreSQL's NOTIFY can evict it), says `ready`, then after the
parent's `forgot` line re-reads until the buyer's name is erased and prints `erased <s>`.

argv: PostgreSQL URL, schema, KEK (base64), order id.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from uuid import UUID

from personal_support import OrderPlaced  # registers the event class

from eventsource.personal import LocalKEK, PersonalData, PostgreSQLKeyStore


async def main(url: str, schema: str, kek: str, order: str) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.stores.postgresql import PostgreSQLEventStore

    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    store = PostgreSQLEventStore(async_sessionmaker(engine, expire_on_commit=False))
    personal = PersonalData(
        PostgreSQLKeyStore(engine), LocalKEK(base64.b64decode(kek), "kek-1"), cache_ttl=3600
    )
    personal.attach(store)
    order_id = UUID(order)
    [event] = (await store.get_events(order_id, "Order")).events
    assert isinstance(event, OrderPlaced)
    print("ready", event.buyer_name, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.monotonic()
    while time.monotonic() - started < 10:
        [event] = (await store.get_events(order_id, "Order")).events
        assert isinstance(event, OrderPlaced)
        if event.buyer_name == "[erased]":
            print(f"erased {time.monotonic() - started:.3f}", flush=True)
            break
        await asyncio.sleep(0.01)
    else:
        print("not erased", flush=True)
    await personal.close()
    await store.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
