"""aiormq shims for `RabbitMQEventBus`: publishing a batch in one write, and consuming off
aiormq without aio-pika's per-message wrapping.

aiormq's `basic_publish` sends one message per call: a task, a lock, a queue hop and a socket
write each, much more CPU a message than a batch written as one.
A batch is sent as aiormq sends a message, but in one frame buffer: the confirmation
futures are registered in the channel's `confirmations` under consecutive delivery tags (the
broker numbers published messages in order on a confirming channel), so aiormq settles them,
returns included, and fails them when the channel closes, exactly as for its own publishes.
That relies on channel internals (`_BATCH_ATTRIBUTES`); a channel without them is published to
one message at a time through aiormq's public `basic_publish`, with the same result.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional

if TYPE_CHECKING:
    import aiormq
    import aiormq.abc
    import aiormq.exceptions
    import pamqp.body
    import pamqp.header
else:
    aiormq = optional("aiormq")
    if aiormq is not None:
        import aiormq.abc
        import aiormq.exceptions
        import pamqp.body
        import pamqp.header

__all__ = ["Delivery", "Outgoing", "can_write_batch", "publish_all"]

Outgoing = tuple[str, bytes, "aiormq.spec.Basic.Properties"]
"""A message to publish: routing key, body, properties."""

_BATCH_ATTRIBUTES = (
    "confirmations",
    "message_id_delivery_tag",
    "delivery_tag",
    "write_queue",
    "max_content_size",
    "number",
    "lock",
    "create_future",
)


def can_write_batch(channel: Any) -> bool:
    """Whether this aiormq channel has what the one-write batch relies on."""
    confirms = getattr(channel, "publisher_confirms", False)
    return bool(confirms) and all(hasattr(channel, a) for a in _BATCH_ATTRIBUTES)


def _frames(exchange: str, outgoing: Sequence[Outgoing], max_body: int) -> list[Any]:
    frames: list[Any] = []
    for key, body, properties in outgoing:
        frames.append(aiormq.spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=True))
        frames.append(pamqp.header.ContentHeader(properties=properties, body_size=len(body)))
        frames.extend(
            pamqp.body.ContentBody(body[start : start + max_body])
            for start in range(0, len(body), max_body)
        )
    return frames


async def _write_batch(
    channel: Any, exchange: str, outgoing: Sequence[Outgoing]
) -> tuple[int, list[asyncio.Future[Any]]]:
    """Write every message in one go; the first delivery tag and a confirm future each."""
    for _, _, properties in outgoing:
        if not properties.message_id:  # returned messages are matched by message id
            properties.message_id = secrets.token_hex(16)
    payload = aiormq.abc.ChannelFrame.marshall(
        channel_number=channel.number,
        frames=_frames(exchange, outgoing, channel.max_content_size),
    )
    async with channel.lock:
        first = channel.delivery_tag + 1
        confirms: list[asyncio.Future[Any]] = []
        for tag, (_, _, properties) in enumerate(outgoing, start=first):
            confirm = channel.create_future()
            channel.confirmations[tag] = confirm
            channel.message_id_delivery_tag[properties.message_id] = tag
            confirms.append(confirm)
        channel.delivery_tag = first + len(outgoing) - 1
        try:
            await channel.write_queue.put(payload)
        except BaseException:
            # Nothing went out: the broker never numbered these, so reuse their tags.
            channel.delivery_tag = first - 1
            for confirm in confirms:
                confirm.cancel()
            _forget_message_ids(channel, first, outgoing)
            for tag in range(first, first + len(outgoing)):
                channel.confirmations.pop(tag, None)
            raise
    return first, confirms


def _forget_message_ids(channel: Any, first: int, outgoing: Sequence[Outgoing]) -> None:
    mapping = channel.message_id_delivery_tag
    for tag, (_, _, properties) in enumerate(outgoing, start=first):
        if mapping.get(properties.message_id) == tag:
            del mapping[properties.message_id]


def _publish_one(channel: Any, exchange: str, item: Outgoing) -> asyncio.Future[Any]:
    key, body, properties = item
    confirm: asyncio.Future[Any] = asyncio.ensure_future(
        channel.basic_publish(
            body,
            exchange=exchange,
            routing_key=key,
            properties=properties,
            mandatory=True,
            wait=False,  # the confirm is what counts; frames still go out in order
        )
    )
    return confirm


class Delivery:
    """A consumed message read straight off aiormq, with the attributes of aio-pika's
    `IncomingMessage` that consuming uses. Building an `IncomingMessage` (two dozen guarded
    attribute writes) in a task of its own was a large share of the consumer's CPU."""

    __slots__ = (
        "_channel",
        "body",
        "content_type",
        "correlation_id",
        "delivery_mode",
        "delivery_tag",
        "headers",
        "message_id",
        "routing_key",
        "type",
    )

    def __init__(self, message: aiormq.abc.DeliveredMessage) -> None:
        properties = message.header.properties
        self._channel = message.channel
        self.body = message.body
        self.headers: dict[str, Any] = properties.headers or {}
        self.content_type = properties.content_type
        self.correlation_id = properties.correlation_id
        self.delivery_mode = properties.delivery_mode
        self.message_id = properties.message_id
        self.type = properties.message_type
        self.routing_key = message.routing_key
        self.delivery_tag = message.delivery_tag

    @property
    def channel(self) -> aiormq.abc.AbstractChannel:
        """The channel it came on; `ChannelInvalidStateError` once that is closed."""
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError
        return self._channel

    async def ack(self, multiple: bool = False) -> None:
        assert self.delivery_tag is not None
        # No drain: a lost ack only means a redelivery.
        await self.channel.basic_ack(self.delivery_tag, multiple=multiple, wait=False)

    async def nack(self, requeue: bool = True) -> None:
        assert self.delivery_tag is not None
        await self.channel.basic_nack(self.delivery_tag, requeue=requeue)


def _nothing_to_release() -> None:
    return None


async def publish_all(
    channel: Any, exchange: str, outgoing: Sequence[Outgoing], batched: bool | None = None
) -> tuple[list[asyncio.Future[Any]], Callable[[], None]]:
    """Send every message (mandatory, in order) on a confirming aiormq channel: a confirm
    future each, and what to call once they are settled or given up on. In one write when the
    channel allows it (`batched=None`: find out), else one `basic_publish` per message."""
    if batched is None:
        batched = can_write_batch(channel)
    if not batched:
        return [_publish_one(channel, exchange, item) for item in outgoing], _nothing_to_release
    first, confirms = await _write_batch(channel, exchange, outgoing)

    def release() -> None:
        _forget_message_ids(channel, first, outgoing)

    return confirms, release
