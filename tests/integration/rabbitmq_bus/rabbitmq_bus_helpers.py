"""Shared pieces of the RabbitMQ bus tests: a fresh exchange per test, deleted afterwards, and
a TCP proxy whose connections a test can cut."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from brokers import require_rabbitmq
from eventsource.bus.rabbitmq import RabbitMQEventBus, RabbitMQEventBusConfig


class Buses:
    """Opens `RabbitMQEventBus`es on one exchange; shuts them down and deletes the exchange,
    and every group's queues, at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.exchange = f"test-{uuid.uuid4().hex[:12]}"
        self.opened: list[RabbitMQEventBus] = []
        self.groups: set[str] = set()

    def config(self, **overrides: Any) -> RabbitMQEventBusConfig:
        settings: dict[str, Any] = {
            "rabbitmq_url": self.url,
            "exchange_name": self.exchange,
            "prefetch_count": 50,
            "retry_base_delay": 0.05,
            "reconnect_delay": 0.1,
            "max_reconnect_delay": 15.0,
        }
        settings.update(overrides)
        config = RabbitMQEventBusConfig(**settings)
        self.groups.add(config.consumer_group)
        return config

    async def open(self, **overrides: Any) -> RabbitMQEventBus:
        bus = RabbitMQEventBus(self.config(**overrides))
        await bus.connect()
        self.opened.append(bus)
        return bus

    async def cleanup(self) -> None:
        import aio_pika

        for bus in self.opened:
            await bus.shutdown(timeout=10)
        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel()
            for group in self.groups:
                queue = f"{self.exchange}.{group}"
                for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
                    await channel.queue_delete(name)
            for name in (self.exchange, f"{self.exchange}_dlq"):
                await channel.exchange_delete(name)
        finally:
            await connection.close()


@asynccontextmanager
async def rabbitmq_buses(url: str | None = None) -> AsyncIterator[Buses]:
    """Buses on a fresh exchange (through `url` when given, e.g. a proxy)."""
    broker = require_rabbitmq()
    buses = Buses(url or broker)
    try:
        yield buses
    finally:
        buses.url = broker
        await buses.cleanup()


def via(url: str, port: int) -> str:
    """`url` with its host replaced by 127.0.0.1:`port` (a proxy's)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


class CuttableProxy:
    """Forwards local TCP connections to the broker; `cut()` aborts them all at once, as a
    network failure would (both the client and the broker see the connection drop)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self.links.discard(link)

    def cut(self) -> int:
        """Abort every open link; return how many there were."""
        links = list(self.links)
        for client, broker in links:
            client.transport.abort()
            broker.transport.abort()
        return len(links)

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
