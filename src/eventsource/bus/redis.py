"""`RedisEventBus`: one Redis stream, consumer groups, claiming of stuck messages, a DLQ stream.

Delivery is at least once: a message is acknowledged only after its handlers succeeded (acks are
batched per read), so a crash or a dropped connection redelivers what was not yet acknowledged.
Retries are counted per message id in Redis; after `max_retries` failures the message goes to
the DLQ stream with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

from eventsource._optional import optional
from eventsource._retry import Backoff, Pauses, retry
from eventsource.bus._codec import (
    UndecodableMessageError,
    decode_message,
    describe_error,
    encode_entry,
)
from eventsource.bus._dead_letters import Failure
from eventsource.bus._redis_admin import RedisAdmin
from eventsource.bus._redis_config import RedisEventBusConfig, RedisEventBusStats
from eventsource.bus._redis_entries import (
    READ_SCRIPT,
    DeadLetter,
    Entry,
    dead_letter_fields,
    text,
    unpack_read,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.exceptions import EventBusError, RedisNotAvailableError
from eventsource.observability.tracing import propagation_fields

if TYPE_CHECKING:
    import redis.asyncio as aioredis
else:
    aioredis = optional("redis.asyncio")

__all__ = [
    "REDIS_AVAILABLE",
    "RedisEventBus",
    "RedisEventBusConfig",
    "RedisEventBusStats",
    "RedisNotAvailableError",
]

logger = logging.getLogger(__name__)

REDIS_AVAILABLE = aioredis is not None
_TRANSIENT: tuple[type[Exception], ...] = (
    (aioredis.ConnectionError, aioredis.TimeoutError, OSError) if aioredis is not None else ()
)
_REFUSED: tuple[type[Exception], ...] = (
    (aioredis.ResponseError, EventBusError) if aioredis is not None else ()
)
_PIPELINE_CHUNK = 1000  # XADDs per round trip: large enough to amortise, small enough to retry
_PUBLISH_ATTEMPTS = 12
_PUBLISH_BACKOFF = Backoff(0.05, 1.0)  # through a dropped connection
_CONSUME_BACKOFF = Backoff(0.05, 2.0)
_RETRY_PAUSE = 0.05  # before redelivering failed messages: a transient fault may clear
_RELEASED_IDLE_MS = 7 * 24 * 3600 * 1000  # released entries look stuck at once to any claimer
_T = TypeVar("_T")


class RedisEventBus(RedisAdmin):
    """An `EventBus` over Redis Streams: every group gets every event, a group's consumers
    share them."""

    def __init__(
        self, config: RedisEventBusConfig | None = None, event_registry: EventRegistry | None = None
    ) -> None:
        if aioredis is None:
            raise RedisNotAvailableError
        config = config or RedisEventBusConfig()
        super().__init__(
            config, RedisEventBusStats(), event_registry, logger, config.enable_tracing
        )
        self._consumer_name: str = config.consumer_name or ""
        self._client: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._read_script: Any = None
        self._group_ready = False
        self._retry_pending = False
        self._retried: set[str] = set()

    # -- connection --------------------------------------------------------------------------

    def _new_client(self, socket_timeout: float) -> aioredis.Redis:
        assert aioredis is not None
        return aioredis.Redis.from_url(
            self._config.redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=self._config.socket_connect_timeout,
            single_connection_client=self._config.single_connection_client,
            client_name=f"eventsource-{self._config.consumer_name}",  # visible in CLIENT LIST
        )

    async def _connect(self) -> None:
        self._client = self._new_client(self._config.socket_timeout)
        # Blocking reads wait up to block_ms: their socket must outlast that.
        self._reader = self._new_client(self._config.socket_timeout + self._config.block_ms / 1000)
        self._read_script = self._reader.register_script(READ_SCRIPT)
        self._group_ready = False
        try:
            await self._client.ping()
            # The group now, not when consuming starts: it is visible (get_stream_info, redis
            # tools) from the first connect, as RabbitMQ's queue is.
            await self._ensure_group()
        except BaseException:
            await self._disconnect()
            raise

    async def _disconnect(self) -> None:
        for client in (self._client, self._reader):
            if client is not None:
                await client.aclose()
        self._client = self._reader = None

    async def _retrying(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run `operation`, reconnecting through dropped connections with a growing pause."""

        def reconnecting(_attempt: int, error: BaseException, delay: float) -> None:
            self._stats.reconnections += 1
            logger.warning("Redis connection lost (%s); retrying in %.2f s", error, delay)

        try:
            return await retry(
                operation,
                attempts=_PUBLISH_ATTEMPTS,
                backoff=_PUBLISH_BACKOFF,
                retry_on=_TRANSIENT,
                on_retry=reconnecting,
            )
        except _TRANSIENT as exc:
            message = f"Redis unreachable after {_PUBLISH_ATTEMPTS} attempts: {exc}"
            raise EventBusError(message) from exc

    # -- publishing --------------------------------------------------------------------------

    async def _publish_events(self, events: Sequence[DomainEvent]) -> None:
        # Encode everything first: an unserialisable event fails the call before any XADD.
        trace = self._trace_headers()
        messages = [encode_entry(event, trace) for event in events]
        stream = self._config.stream_name
        for start in range(0, len(messages), _PIPELINE_CHUNK):
            chunk = messages[start : start + _PIPELINE_CHUNK]

            async def send(chunk: list[dict[str, str]] = chunk) -> None:
                pipe = self._redis.pipeline(transaction=False)
                for fields in chunk:
                    pipe.xadd(stream, fields)  # type: ignore[arg-type]
                await pipe.execute()

            # A retried chunk may add some entries twice: delivery is at least once anyway.
            await self._retrying(send)
            self._stats.events_published += len(chunk)

    # -- consuming ---------------------------------------------------------------------------

    async def start_consuming(self, consumer_name: str | None = None) -> None:
        """Consume as `consumer_name` (default: the config's) until `stop_consuming()`."""
        if consumer_name is not None:
            self._consumer_name = consumer_name
        await super().start_consuming()

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start: events published before the first consumer are not lost.
            await self._redis.xgroup_create(
                self._config.stream_name, self._config.consumer_group, id="0", mkstream=True
            )
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _consume(self) -> None:
        interval = min(max(self._config.pending_idle_ms / 2000, 0.1), 30.0)
        next_recovery = 0.0
        own_cursor: str | None = "0"  # first our own unacknowledged entries (a restart)
        pauses = Pauses(_CONSUME_BACKOFF)
        try:
            while not self._stopping:
                try:
                    await self._ensure_group()
                    self._mark_subscribed()
                    if time.monotonic() >= next_recovery:
                        next_recovery = time.monotonic() + interval
                        await self._recover(self._config.pending_idle_ms, None, None, True)
                        continue
                    if own_cursor is not None:
                        entries = await self._read(own_cursor, block=False)
                        own_cursor = entries[-1][0] if entries else None
                    else:
                        entries = await self._read(">", block=True)
                    await self._process_entries(entries, self._config.max_retries, True)
                    if own_cursor is None and self._retry_pending:
                        self._retry_pending = False
                        own_cursor = "0"  # redeliver our failed messages, after a breath
                        if await self._stopped_within(_RETRY_PAUSE):
                            break
                    pauses.reset()
                except aioredis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    self._group_ready = False  # the stream was deleted or the server restarted
                except _TRANSIENT as exc:
                    self._stats.reconnections += 1
                    logger.warning("Redis connection lost while consuming (%s); reconnecting", exc)
                    own_cursor = "0"  # acks may have been lost with the connection
                    if await self._stopped_within(pauses.next()):
                        break
        finally:
            await self._release_pending()

    async def _read(self, cursor: str, block: bool) -> list[Entry]:
        """The next batch at `cursor` ("0..." our pending entries, ">" new ones); when there are
        none and `block`, wait up to block_ms for new ones (abandoned when stopping)."""
        config = self._config
        reply = await self._read_script(
            keys=[config.stream_name],
            args=[
                config.consumer_group,
                self._consumer_name,
                config.batch_size,
                cursor,
                *(propagation_fields() if self._tracing_live() else ()),
            ],
        )
        if reply or not block:
            return unpack_read(reply)
        assert self._reader is not None
        call = self._reader.xreadgroup(
            config.consumer_group,
            self._consumer_name,
            {config.stream_name: ">"},
            count=config.batch_size,
            block=config.block_ms,
        )
        if self._stop_event is None:
            response: Any = await call
        else:
            read = asyncio.ensure_future(call)
            stop = asyncio.ensure_future(self._stop_event.wait())
            await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not read.done():
                # Whatever the server handed us meanwhile stays pending and is released on exit.
                read.cancel()
                await asyncio.gather(read, return_exceptions=True)
                return []
            response = read.result()
        if not response:
            return []
        return [(text(message_id), fields) for message_id, fields in response[0][1]]

    async def _process_entries(
        self, entries: Sequence[Entry], max_retries: int, stoppable: bool
    ) -> dict[str, int]:
        """Handle entries in order; ack the successes and dead letters in one round trip."""
        counts = {"reprocessed": 0, "dlq": 0, "failed": 0}
        acks: list[str] = []
        dead: list[DeadLetter] = []
        try:
            for message_id, fields in entries:
                if stoppable and self._stopping:
                    break  # the rest stays unacknowledged for another consumer
                if fields is None:  # deleted from the stream while pending
                    acks.append(message_id)
                    continue
                outcome = await self._process_one(message_id, fields, max_retries)
                if outcome is None:
                    acks.append(message_id)
                    counts["reprocessed"] += 1
                elif isinstance(outcome, DeadLetter):
                    dead.append(outcome)
                    counts["dlq"] += 1
                else:
                    counts["failed"] += 1
        finally:
            await self._settle(acks, dead)
        return counts

    async def _process_one(
        self, message_id: str, fields: Mapping[bytes, bytes], max_retries: int
    ) -> DeadLetter | bool | None:
        """None: processed; `DeadLetter`: give up; False: failed, to be retried."""
        self._stats.events_consumed += 1
        with self._consume_span(
            "eventsource.event_bus.process", fields, {"messaging.message.id": message_id}
        ):
            keys = await self._message_keys(fields)  # personal data: None without it
            try:
                with nullcontext() if keys is None else keys.active():
                    event = decode_message(fields, self._event_registry)
            except UndecodableMessageError as exc:
                self._stats.events_processed_failed += 1
                logger.error("Undecodable message %s: %s", message_id, exc.reason)  # noqa: TRY400
                failure = Failure(exc.reason, type(exc).__name__, 0, self._config.consumer_group)
                return DeadLetter(message_id, fields, failure)
            failures = await self._dispatch(event)
        if not failures:
            self._stats.events_processed_success += 1
            return None
        self._stats.events_processed_failed += 1
        count = await self._count_failure(message_id)
        if count >= max_retries:
            error = failures[0][1]
            failure = Failure(
                describe_error(error), type(error).__name__, count, self._config.consumer_group
            )
            return DeadLetter(message_id, fields, failure)
        self._retry_pending = True
        return False

    async def _count_failure(self, message_id: str) -> int:
        key = self._config.get_retry_key(message_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, self._config.retry_key_expiry_seconds)
        count, _ = await pipe.execute()
        self._retried.add(message_id)
        return int(count)

    async def _settle(self, acks: list[str], dead: list[DeadLetter]) -> None:
        if not acks and not dead:
            return
        config = self._config
        originals = await self._originals(dead) if dead and config.enable_dlq else {}
        pipe = self._redis.pipeline(transaction=False)
        for letter in dead:
            if config.enable_dlq:
                data = dead_letter_fields(letter, originals.get(letter.message_id))
                pipe.xadd(config.dlq_stream_name, data)  # type: ignore[arg-type]
            else:
                logger.error(
                    "Dropping message %s (DLQ disabled): %s",
                    letter.message_id,
                    letter.failure.reason,
                )
            pipe.delete(config.get_retry_key(letter.message_id))
            self._retried.discard(letter.message_id)
        for message_id in acks:
            if message_id in self._retried:
                self._retried.discard(message_id)
                pipe.delete(config.get_retry_key(message_id))
        ids = [*acks, *(letter.message_id for letter in dead)]
        pipe.xack(config.stream_name, config.consumer_group, *ids)
        await pipe.execute()
        if config.enable_dlq:
            self._stats.messages_sent_to_dlq += len(dead)

    async def _originals(self, dead: list[DeadLetter]) -> dict[str, Any]:
        """The full entries of the dead letters (fast reads carry only some fields)."""
        pipe = self._redis.pipeline(transaction=False)
        for letter in dead:
            pipe.xrange(self._config.stream_name, letter.message_id, letter.message_id, 1)
        found: list[Any] = await pipe.execute()
        return {
            letter.message_id: hit[0][1] for letter, hit in zip(dead, found, strict=True) if hit
        }

    async def _release_pending(self) -> None:
        """Make our unacknowledged entries claimable at once by the group's other consumers."""
        config = self._config
        try:
            pending: Any = await self._redis.xpending_range(
                config.stream_name,
                config.consumer_group,
                "-",
                "+",
                10_000,
                consumername=self._consumer_name,
            )
            ids = [entry["message_id"] for entry in pending]
            if ids:
                await self._redis.xclaim(
                    config.stream_name,
                    config.consumer_group,
                    self._consumer_name,
                    0,
                    ids,
                    idle=_RELEASED_IDLE_MS,
                    justid=True,
                )
        except (*_TRANSIENT, *_REFUSED) as exc:
            logger.warning(
                "Could not release pending messages (%s); they wait for pending_idle_ms instead",
                exc,
            )

    # -- recovery ----------------------------------------------------------------

    async def recover_pending_messages(
        self,
        min_idle_time_ms: int | None = None,
        max_retries: int | None = None,
        batch_size: int | None = None,
    ) -> dict[str, int]:
        """Claim messages pending longer than `min_idle_time_ms` (e.g. of a dead consumer) and
        process them here; those out of retries go to the DLQ."""
        await self.connect()
        await self._ensure_group()
        idle = self._config.pending_idle_ms if min_idle_time_ms is None else min_idle_time_ms
        return await self._recover(idle, max_retries, batch_size, False)

    async def _recover(
        self, min_idle_ms: int, max_retries: int | None, batch_size: int | None, stoppable: bool
    ) -> dict[str, int]:
        config = self._config
        retries = config.max_retries if max_retries is None else max_retries
        result = {"checked": 0, "claimed": 0, "reprocessed": 0, "dlq": 0, "failed": 0}
        cursor = "0-0"
        for _ in range(10_000):  # XAUTOCLAIM scans the pending list in pages
            reply: Any = await self._redis.xautoclaim(
                config.stream_name,
                config.consumer_group,
                self._consumer_name,
                min_idle_ms,
                cursor,
                count=batch_size or config.batch_size,
            )
            cursor = text(reply[0])
            claimed = [(text(message_id), fields) for message_id, fields in reply[1]]
            deleted = [text(message_id) for message_id in (reply[2] if len(reply) > 2 else ())]
            result["checked"] += len(claimed) + len(deleted)
            result["claimed"] += len(claimed)
            self._stats.messages_recovered += len(claimed)
            if deleted:
                await self._redis.xack(config.stream_name, config.consumer_group, *deleted)
            for key, value in (await self._process_entries(claimed, retries, stoppable)).items():
                result[key] += value
            if cursor == "0-0" or (stoppable and self._stopping):
                break
        return result
