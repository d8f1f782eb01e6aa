"""The Redis bus's administration: the dead letters and the stream's state (`RedisEventBus`
is built on `RedisAdmin`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource.bus._broker import BrokerEventBus
from eventsource.bus._redis_config import RedisEventBusConfig, RedisEventBusStats
from eventsource.bus._redis_entries import replay_fields, text
from eventsource.exceptions import EventBusError

if TYPE_CHECKING:
    import redis.asyncio as aioredis
else:
    aioredis = optional("redis.asyncio")

__all__ = ["RedisAdmin"]


class RedisAdmin(BrokerEventBus[RedisEventBusConfig, RedisEventBusStats]):
    """A Redis bus's DLQ and inspection; publishing and consuming are the subclass's."""

    _client: aioredis.Redis | None

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise EventBusError("RedisEventBus is not connected")
        return self._client

    async def get_dlq_messages(
        self, count: int = 100, start: str = "-", end: str = "+"
    ) -> list[dict[str, Any]]:
        """Dead letters, oldest first: `{"message_id", "data"}` with the reason in the data."""
        await self.connect()
        entries: Any = await self._redis.xrange(self._config.dlq_stream_name, start, end, count)
        return [
            {
                "message_id": text(message_id),
                "data": {text(k): text(v) for k, v in fields.items()},
            }
            for message_id, fields in entries
        ]

    async def replay_dlq_message(self, message_id: str) -> bool:
        """Put a dead letter back on the stream (without its DLQ fields); False if absent."""
        await self.connect()
        config = self._config
        entries: Any = await self._redis.xrange(config.dlq_stream_name, message_id, message_id, 1)
        if not entries:
            return False
        fields = replay_fields(entries[0][1])
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(config.stream_name, fields)
        pipe.xdel(config.dlq_stream_name, message_id)
        await pipe.execute()
        return True

    async def get_stream_info(self) -> dict[str, Any]:
        """Stream length and ends, groups, pending and dead-letter counts, and the stats."""
        if not self.is_connected:
            return {"connected": False}
        config = self._config
        redis = self._redis
        try:
            info: dict[str, Any] = await redis.xinfo_stream(config.stream_name)
            groups: list[dict[str, Any]] = await redis.xinfo_groups(config.stream_name)
        except aioredis.ResponseError:  # no stream yet
            info, groups = {"length": 0}, []
        consumers: list[dict[str, Any]] = []
        if any(text(group["name"]) == config.consumer_group for group in groups):
            consumers = await redis.xinfo_consumers(config.stream_name, config.consumer_group)
        first, last = info.get("first-entry"), info.get("last-entry")
        return {
            "connected": True,
            "stream": {
                "name": config.stream_name,
                "length": int(info.get("length", 0)),
                "first_entry_id": text(first[0]) if first else None,
                "last_entry_id": text(last[0]) if last else None,
            },
            "consumer_groups": [
                {
                    "name": text(g["name"]),
                    "consumers": int(g["consumers"]),
                    "pending": int(g["pending"]),
                }
                for g in groups
            ],
            "pending_messages": sum(int(g["pending"]) for g in groups),
            "dlq_messages": int(await redis.xlen(config.dlq_stream_name)),
            "active_consumers": sum(
                1 for c in consumers if int(c.get("idle", 0)) < config.pending_idle_ms
            ),
            "stats": self.get_stats_dict(),
        }
