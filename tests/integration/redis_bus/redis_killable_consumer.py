"""A consumer process for the SIGKILL test: records each event it handles in a Redis set.

Usage: python redis_killable_consumer.py REDIS_URL STREAM_PREFIX
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from eventsource.bus.redis import RedisEventBus, RedisEventBusConfig
from eventsource.events.base import DomainEvent
from eventsource.testing.contract.bus import ContractPing


async def main(url: str, prefix: str) -> None:
    config = RedisEventBusConfig(
        redis_url=url, stream_prefix=prefix, consumer_name="doomed", batch_size=50, block_ms=500
    )
    bus = RedisEventBus(config)
    recorder = aioredis.Redis.from_url(url)

    async def handle(event: DomainEvent) -> None:
        await recorder.sadd(f"{prefix}:processed", str(event.event_id))
        await asyncio.sleep(0.01)  # slow: most of each batch is still pending when killed

    bus.subscribe(ContractPing, handle)
    await bus.start_consuming()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
