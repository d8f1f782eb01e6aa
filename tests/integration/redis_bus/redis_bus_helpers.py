"""Shared pieces of the Redis bus tests: a fresh stream prefix per test, deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from brokers import require_redis
from eventsource.bus.redis import RedisEventBus, RedisEventBusConfig


def fresh_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def drop_prefix(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Buses:
    """Opens `RedisEventBus`es that share one stream prefix; shuts them all down at the end."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.opened: list[RedisEventBus] = []

    def config(self, **overrides: Any) -> RedisEventBusConfig:
        settings: dict[str, Any] = {
            "redis_url": self.url,
            "stream_prefix": self.prefix,
            "block_ms": 500,
            "pending_idle_ms": 2000,
            "batch_size": 50,
        }
        settings.update(overrides)
        return RedisEventBusConfig(**settings)

    async def open(self, **overrides: Any) -> RedisEventBus:
        bus = RedisEventBus(self.config(**overrides))
        await bus.connect()
        self.opened.append(bus)
        return bus


@asynccontextmanager
async def redis_buses() -> AsyncIterator[Buses]:
    url = require_redis()
    buses = Buses(url, fresh_prefix())
    try:
        yield buses
    finally:
        for bus in buses.opened:
            await bus.shutdown(timeout=10)
        await drop_prefix(url, buses.prefix)
