"""Shared pieces of the NATS bus tests: a fresh stream per test (deleted afterwards) and a TCP
proxy whose connections the test can drop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

from brokers import require_nats
from eventsource.bus.nats import NATSEventBus, NATSEventBusConfig


class Buses:
    """Opens `NATSEventBus`es on one stream; shuts them all down at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"test{uuid.uuid4().hex[:12]}"
        self.opened: list[NATSEventBus] = []

    def config(self, **overrides: Any) -> NATSEventBusConfig:
        settings: dict[str, Any] = {
            "servers": self.url,
            "subject_prefix": self.prefix,
            "fetch_timeout": 0.5,
            "ack_wait": 2.0,
            "retry_base_delay": 0.05,
            "retry_max_delay": 0.2,
        }
        settings.update(overrides)
        return NATSEventBusConfig(**settings)

    async def open(self, **overrides: Any) -> NATSEventBus:
        bus = NATSEventBus(self.config(**overrides))
        await bus.connect()
        self.opened.append(bus)
        return bus

    async def drop_streams(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        config = self.config()
        client = await nats.connect(self.url)
        try:
            for stream in (config.stream_name, config.dlq_stream_name):
                with contextlib.suppress(NotFoundError):
                    await client.jetstream().delete_stream(str(stream))
        finally:
            await client.close()


@asynccontextmanager
async def nats_buses() -> AsyncIterator[Buses]:
    buses = Buses(require_nats())
    try:
        yield buses
    finally:
        for bus in buses.opened:
            await bus.shutdown(timeout=10)
        await buses.drop_streams()


async def make_the_server_close(bus: NATSEventBus) -> None:
    """Have the server close this bus's connection with a protocol error, as an oversize dead
    letter did: a message over its max_payload counting the headers (the client checks only the
    body). Only this connection is affected; nats-py does not reconnect after it."""
    client: Any = bus._nc
    assert client is not None
    probe = f"{bus.config.subject_prefix}_probe"  # outside the stream: nothing is stored
    await client.publish(probe, b"x" * (client.max_payload - 8), headers={"pad": "p" * 64})
    for _ in range(500):
        if client.is_closed:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not close the connection")


class DroppingProxy:
    """Forwards TCP connections to the NATS server; `drop()` cuts every one of them, as a
    network failure would (the server is left alone: other users are not disturbed)."""

    def __init__(self, target_url: str) -> None:
        parsed = urlparse(target_url)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 4222)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.drops = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"nats://127.0.0.1:{port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def drop(self) -> None:
        if self.writers:
            self.drops += 1
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self.writers.discard(writer)
            writer.transport.abort()
