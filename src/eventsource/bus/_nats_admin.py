"""The NATS bus's administration: its streams, the dead letters and the stream's state
(`NATSEventBus` is built on `NATSAdmin`)."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional
from eventsource.bus._broker import BrokerEventBus
from eventsource.bus._nats_config import NATSEventBusConfig, NATSEventBusStats, subject_token
from eventsource.bus._nats_messages import ORIGINAL_SIZE, replay_headers
from eventsource.exceptions import EventBusError

if TYPE_CHECKING:
    import nats
    import nats.js
    import nats.js.api
    import nats.js.errors
else:
    nats = optional("nats")

__all__ = ["NATSAdmin"]


class NATSAdmin(BrokerEventBus[NATSEventBusConfig, NATSEventBusStats]):
    """A NATS bus's streams and inspection; publishing and consuming are the subclass's."""

    _js: nats.js.JetStreamContext | None

    @abstractmethod
    async def _live_jetstream(self) -> nats.js.JetStreamContext:
        """JetStream on an open connection."""

    @property
    def _jetstream(self) -> nats.js.JetStreamContext:
        if self._js is None:
            raise EventBusError("NATSEventBus is not connected")
        return self._js

    async def _ensure_streams(self) -> None:
        config = self._config
        streams = [(config.stream_name, config.subjects)]
        if config.enable_dlq:
            streams.append((config.dlq_stream_name, f"{config.dlq_subject_prefix}.>"))
        for name, subjects in streams:
            try:
                await self._jetstream.stream_info(str(name))
            except nats.js.errors.NotFoundError:
                await self._jetstream.add_stream(
                    name=name,
                    subjects=[subjects],
                    storage=nats.js.api.StorageType(config.storage),
                    max_age=config.max_age or None,
                    duplicate_window=config.duplicate_window,
                )

    # -- the DLQ and introspection -----------------------------------------------------------

    async def get_dlq_messages(
        self, limit: int = 100, consumer_group: str | None = None
    ) -> list[dict[str, Any]]:
        """Dead letters, oldest first: `{"sequence", "subject", "headers", "data"}`; the reason
        is in the `dlq_*` headers."""
        await self.connect()
        out: list[dict[str, Any]] = []
        sequence = 0
        while len(out) < limit:
            stored = await self._next_dead_letter(sequence, consumer_group)
            if stored is None:
                break
            sequence = stored.seq
            out.append(
                {
                    "sequence": stored.seq,
                    "subject": stored.subject,
                    "headers": dict(stored.headers or {}),
                    "data": (stored.data or b"").decode(errors="replace"),
                }
            )
        return out

    async def _next_dead_letter(self, after: int, consumer_group: str | None) -> Any:
        config = self._config
        group = ">" if consumer_group is None else subject_token(consumer_group)
        subject = f"{config.dlq_subject_prefix}.{group}"
        js = await self._live_jetstream()
        try:
            return await js.get_msg(
                config.dlq_stream_name, seq=after + 1, subject=subject, next=True
            )
        except nats.js.errors.NotFoundError:
            return None

    async def replay_dlq_message(self, sequence: int) -> bool:
        """Publish a dead letter again on its original subject (every group receives it) and
        delete it from the DLQ; False if absent. A dead letter cut to fit the server's limit is
        replayed from its whole original in the stream."""
        await self.connect()
        config = self._config
        js = await self._live_jetstream()
        try:
            stored = await js.get_msg(config.dlq_stream_name, sequence)
        except nats.js.errors.NotFoundError:
            return False
        headers = stored.headers or {}
        subject = headers.get("dlq_original_subject") or config.subject_for("_", "_")
        data = stored.data or b""
        if ORIGINAL_SIZE in headers:
            original = await self._original_of(sequence, headers)
            data, headers = original.data or b"", original.headers or {}
        await js.publish(subject, data, headers=replay_headers(headers))
        await js.delete_msg(config.dlq_stream_name, sequence)
        return True

    async def _original_of(self, sequence: int, letter: dict[str, str]) -> Any:
        """The stream's message a cut dead letter stands for."""
        stream = str(self._config.stream_name)
        original = int(letter["dlq_original_sequence"])
        try:
            return await self._jetstream.get_msg(stream, original)
        except nats.js.errors.NotFoundError:
            message = (
                f"dead letter {sequence} holds only the first bytes of message {original} of "
                f"stream {stream}, which is gone; it cannot be replayed"
            )
            raise EventBusError(message) from None

    async def get_stream_info(self) -> dict[str, Any]:
        """Stream and DLQ sizes, this group's consumer state, and the stats."""
        if not self.is_connected:
            return {"connected": False}
        config = self._config
        js = await self._live_jetstream()
        stream = await js.stream_info(str(config.stream_name))
        try:
            consumer: Any = await js.consumer_info(str(config.stream_name), config.durable_name)
        except nats.js.errors.NotFoundError:
            consumer = None
        dlq = await js.stream_info(config.dlq_stream_name) if config.enable_dlq else None
        return {
            "connected": True,
            "stream": {
                "name": config.stream_name,
                "messages": stream.state.messages,
                "first_seq": stream.state.first_seq,
                "last_seq": stream.state.last_seq,
            },
            "consumer_group": {
                "name": config.durable_name,
                "pending": consumer.num_pending if consumer else 0,
                "ack_pending": consumer.num_ack_pending if consumer else 0,
                "redelivered": consumer.num_redelivered if consumer else 0,
            },
            "dlq_messages": dlq.state.messages if dlq else 0,
            "stats": self.get_stats_dict(),
        }
