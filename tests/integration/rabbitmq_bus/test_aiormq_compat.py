"""The aiormq publishing shim (`eventsource._compat.aiormq`) against its plain fallback: the
broker receives the same messages, in the same order, confirmed the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from brokers import require_rabbitmq

aio_pika = pytest.importorskip("aio_pika")
aiormq = pytest.importorskip("aiormq")

from eventsource._compat.aiormq import Outgoing, can_write_batch, publish_all  # noqa: E402


@pytest.fixture
async def channel() -> AsyncIterator[Any]:
    connection = await aio_pika.connect_robust(require_rabbitmq())
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


def _messages(queue: str) -> list[Outgoing]:
    big = bytes(range(256)) * 2000  # over one frame: sent as several body frames
    bodies = [b'{"n": 1}', b"", big, "caf\u00e9".encode()]
    return [
        (
            queue,
            body,
            aiormq.spec.Basic.Properties(
                content_type="application/json",
                delivery_mode=2,
                headers={"event_type": "Placed", "n": index},
                message_id=f"m{index}",
                message_type="Placed",
                correlation_id=f"c{index}",
            ),
        )
        for index, body in enumerate(bodies)
    ]


async def _publish_and_read(channel: Any, batched: bool) -> tuple[list[bool], list[Any]]:
    queue = await channel.declare_queue(exclusive=True)
    underlay = await channel.get_underlay_channel()
    confirms, release = await publish_all(underlay, "", _messages(queue.name), batched=batched)
    outcomes = await asyncio.gather(*confirms, return_exceptions=True)
    release()
    received = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        received.append(
            (
                message.body,
                message.headers,
                message.message_id,
                message.type,
                message.correlation_id,
                message.content_type,
                message.delivery_mode,
                message.routing_key,
            )
        )
    confirmed = [not isinstance(outcome, BaseException) for outcome in outcomes]
    return confirmed, [(body, *rest[:-1]) for body, *rest in received]


async def test_the_batch_shim_and_the_fallback_deliver_the_same(channel: Any) -> None:
    underlay = await channel.get_underlay_channel()
    assert can_write_batch(underlay), "this aiormq has what the shim needs"
    fast = await _publish_and_read(channel, batched=True)
    plain = await _publish_and_read(channel, batched=False)
    assert fast == plain
    assert fast[0] == [True] * 4
    assert [body for body, *_ in fast[1]] == [m[1] for m in _messages("q")]
    assert not underlay.message_id_delivery_tag, "the shim forgets what it registered"


def test_a_channel_without_the_internals_takes_the_fallback() -> None:
    class Plain:
        publisher_confirms = True

    assert not can_write_batch(Plain())
