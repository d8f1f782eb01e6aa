"""Projections: read models built by handling events."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, ClassVar

from eventsource._attributes import ReadOnly
from eventsource.events.base import DomainEvent
from eventsource.exceptions import ProjectionError
from eventsource.observability.attributes import (
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_HANDLER_NAME,
    ATTR_PROJECTION_NAME,
    ATTR_RETRY_COUNT,
)
from eventsource.observability.tracing import TracingMixin, annotate_current_span, traced
from eventsource.projections._database import TransactionClock, applied_count
from eventsource.projections.decorators import (
    check_handler,
    event_type_name,
    handler_names,
    report_unhandled,
)
from eventsource.projections.dlq_manager import ProjectionDLQManager
from eventsource.projections.retry import ExponentialBackoffRetryPolicy, RetryPolicy
from eventsource.protocols import EventSubscriber
from eventsource.repositories.checkpoint import (
    CheckpointRepository,
    ConnectionCheckpointWriter,
    InMemoryCheckpointRepository,
)
from eventsource.repositories.dlq import DLQRepository, InMemoryDLQRepository
from eventsource.subscriptions.retry import RetryConfig

__all__ = [
    "CheckpointTrackingProjection",
    "DatabaseProjection",
    "DeclarativeProjection",
    "Projection",
]

logger = logging.getLogger(__name__)


class Projection(ABC):
    """Anything that handles events into a read model and can be reset."""

    @abstractmethod
    async def handle(self, event: DomainEvent) -> None:
        """Apply one event to the read model."""

    @abstractmethod
    async def reset(self) -> None:
        """Empty the read model."""


def _legacy_retry_policy(max_retries: int, backoff_base: float) -> RetryPolicy:
    if backoff_base <= 0:
        config = RetryConfig(
            max_retries=max(0, max_retries - 1),
            initial_delay=0.001,
            exponential_base=2.0,
            jitter=0.0,
        )
    else:
        config = RetryConfig(
            max_retries=max(0, max_retries - 1),
            initial_delay=float(backoff_base),
            exponential_base=2.0,
            jitter=0.1,
        )
    return ExponentialBackoffRetryPolicy(config)


_HANDLE_SPAN = "eventsource.projection.handle"


def _handle_attributes(
    projection: CheckpointTrackingProjection, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, object]:
    """The attributes of a projection's span about one event."""
    event = args[0] if args else kwargs["event"]
    return {
        ATTR_PROJECTION_NAME: projection.projection_name,
        ATTR_EVENT_ID: event.event_id,
        ATTR_EVENT_TYPE: event.event_type,
    }


def _handled(projection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A handler span is made only for an event the projection has a handler for."""
    return type(args[0] if args else kwargs["event"]) in projection._handlers


def _handler_attributes(
    projection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, object]:
    """A handler span's attributes: the event's and the handler's name."""
    method, _ = projection._handlers[type(args[0] if args else kwargs["event"])]
    return {**_handle_attributes(projection, args, kwargs), ATTR_HANDLER_NAME: method.__name__}


class CheckpointTrackingProjection(EventSubscriber, Projection, TracingMixin):
    """A projection that records a checkpoint after each event, retries failures per its policy
    and sends events that fail for good to the dead-letter queue."""

    MAX_RETRIES: ClassVar[int] = 3
    RETRY_BACKOFF_BASE: ClassVar[float] = 2

    def __init__(
        self,
        checkpoint_repo: CheckpointRepository | None = None,
        dlq_repo: DLQRepository | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_tracing: bool = False,
    ) -> None:
        self._init_tracing(__name__, enable_tracing)
        # The default repositories trace when the projection does (off by default).
        self._checkpoint_repo: CheckpointRepository = (
            checkpoint_repo
            if checkpoint_repo is not None
            else InMemoryCheckpointRepository(enable_tracing=enable_tracing)
        )
        self._dlq_repo: DLQRepository = (
            dlq_repo if dlq_repo is not None else InMemoryDLQRepository(enable_tracing)
        )
        self._retry_policy = retry_policy or _legacy_retry_policy(
            self.MAX_RETRIES, self.RETRY_BACKOFF_BASE
        )

    @property
    def projection_name(self) -> str:
        return type(self).__name__

    checkpoint_repo: ReadOnly[CheckpointRepository] = ReadOnly("_checkpoint_repo")
    """Where the projection records its checkpoint after each event."""
    dlq_repo: ReadOnly[DLQRepository] = ReadOnly("_dlq_repo")
    """Where events that fail for good go."""
    retry_policy: ReadOnly[RetryPolicy] = ReadOnly("_retry_policy")
    """How failed events are retried."""

    @abstractmethod
    def subscribed_to(self) -> list[type[DomainEvent]]:
        """The event classes this projection handles."""

    @abstractmethod
    async def _process_event(self, event: DomainEvent) -> None:
        """Apply one event to the read model."""

    async def _truncate_read_models(self) -> None:
        """Empty the read model (called by `reset`)."""

    @traced(_HANDLE_SPAN, attributes_of=_handle_attributes, once=True)
    async def handle(self, event: DomainEvent) -> None:
        """Process `event`, retrying per policy; after the last attempt, dead-letter it and raise
        `ProjectionError` chained from the cause."""
        await self._with_retries(event, self._process_event)
        await self._record_checkpoint(event)

    @traced(_HANDLE_SPAN, attributes_of=_handle_attributes, once=True)
    async def handle_checkpointed_elsewhere(self, event: DomainEvent) -> None:
        """`handle` without the per-event checkpoint write.

        A subscription that saves this projection's checkpoint row itself, once per page, calls
        this instead of `handle`, so a database-backed checkpoint costs one round trip per page
        rather than one per event.
        """
        await self._with_retries(event, self._process_event)

    async def _with_retries(
        self, event: DomainEvent, attempt: Callable[[DomainEvent], Awaitable[None]]
    ) -> None:
        """Run `attempt(event)` per the retry policy; dead-letter and raise when it gives up."""
        tries = 0
        while True:
            try:
                await attempt(event)
            except Exception as exc:
                if self._tracer is not None:
                    annotate_current_span({ATTR_RETRY_COUNT: tries})
                if self._retry_policy.should_retry(tries, exc):
                    delay = self._retry_policy.get_backoff(tries)
                    logger.warning(
                        "%s failed on %s %s (attempt %d): %s; retrying in %.2fs",
                        self.projection_name,
                        event.event_type,
                        event.event_id,
                        tries + 1,
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    tries += 1
                    continue
                await self._dead_letter(event, exc, tries + 1)
                raise ProjectionError(
                    self.projection_name, event.event_id, f"{type(exc).__name__}: {exc}"
                ) from exc
            if tries and self._tracer is not None:
                annotate_current_span({ATTR_RETRY_COUNT: tries})
            return

    async def _record_checkpoint(self, event: DomainEvent) -> None:
        """Save the checkpoint after `event` was processed."""
        await self._checkpoint_repo.update_checkpoint(
            projection_name=self.projection_name,
            event_id=event.event_id,
            event_type=event.event_type,
        )

    async def _dead_letter(self, event: DomainEvent, error: Exception, attempts: int) -> None:
        logger.error(
            "%s gave up on %s %s after %d attempts: %s",
            self.projection_name,
            event.event_type,
            event.event_id,
            attempts,
            error,
        )
        await ProjectionDLQManager(self.projection_name, self._dlq_repo).send_to_dlq(
            event, error, attempts
        )

    async def get_checkpoint(self) -> str | None:
        """The id of the last processed event, as a string."""
        found = await self._checkpoint_repo.get_checkpoint(projection_name=self.projection_name)
        return str(found) if found is not None else None

    async def get_lag_metrics(self) -> dict[str, Any] | None:
        metrics = await self._checkpoint_repo.get_lag_metrics(
            projection_name=self.projection_name,
            event_types=[event_type_name(cls) for cls in self.subscribed_to()],
        )
        return asdict(metrics) if metrics is not None else None

    async def reset(self) -> None:
        """Forget the checkpoint, then empty the read model."""
        await self._checkpoint_repo.reset_checkpoint(projection_name=self.projection_name)
        await self._truncate_read_models()


class DeclarativeProjection(CheckpointTrackingProjection):
    """Routes each event to the async method decorated `@handles(ItsClass)`.

    Handlers take `(self, event)` or `(self, conn, event)`; `conn` is None here and the
    session's connection in `DatabaseProjection`.
    """

    unregistered_event_handling: ClassVar[str] = "ignore"
    _handler_names: ClassVar[dict[type[DomainEvent], str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handler_names = handler_names(cls)

    def __init__(
        self,
        checkpoint_repo: CheckpointRepository | None = None,
        dlq_repo: DLQRepository | None = None,
        enable_tracing: bool = False,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(checkpoint_repo, dlq_repo, retry_policy, enable_tracing)
        self._handlers: dict[type[DomainEvent], tuple[Callable[..., Awaitable[None]], bool]] = {}
        for event_class, name in self._handler_names.items():
            method = getattr(self, name)
            self._handlers[event_class] = (method, check_handler(self, name, method, event_class))

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return list(self._handler_names)

    def _connection(self) -> Any:
        return None

    async def _process_event(self, event: DomainEvent) -> None:
        await self._dispatch(event)

    @traced("eventsource.projection.handler", attributes_of=_handler_attributes, when=_handled)
    async def _dispatch(self, event: DomainEvent) -> None:
        """Call the handler of `event`'s class."""
        found = self._handlers.get(type(event))
        if found is None:
            report_unhandled(self, self.unregistered_event_handling, event, self._handler_names)
            return
        method, wants_connection = found
        if wants_connection:
            await method(self._connection(), event)
        else:
            await method(event)

class DatabaseProjection(DeclarativeProjection):
    """A declarative projection whose `handle` runs in one session transaction, passing its
    connection to two-parameter handlers.

    Given a checkpoint repository that can write through that connection (the SQL ones), the
    checkpoint is written in the same transaction as the read model: after a crash, the
    checkpoint names exactly the last event whose writes committed, so resuming from it
    applies nothing twice. `handle_batch` does the same for a whole page in one transaction.
    Under a `SubscriptionManager` its checkpoint row (`projection_name`) is the subscription's:
    each page commits with its position and store cursor (`commit_batch`), and a restart resumes
    from that row (see `eventsource.subscriptions.transactional`).

    A page whose transaction has lasted `max_transaction_seconds` (default 1 s) is committed
    up to the event being applied, with its checkpoint, and the rest goes into the next
    transaction; on SQLite the projection also leaves the write lock free for a moment after
    that long, so appends to the same file get their turn (see `TransactionClock`).
    """

    def __init__(
        self,
        session_factory: Any,
        checkpoint_repo: CheckpointRepository | None = None,
        dlq_repo: DLQRepository | None = None,
        enable_tracing: bool = False,
        *,
        max_transaction_seconds: float = 1.0,
    ) -> None:
        if not max_transaction_seconds > 0:  # also refuses NaN
            raise ValueError(
                f"max_transaction_seconds must be a number of seconds > 0, got "
                f"{max_transaction_seconds!r}"
            )
        super().__init__(checkpoint_repo, dlq_repo, enable_tracing)
        self._session_factory = session_factory
        self._clock = TransactionClock(float(max_transaction_seconds))
        self._current_connection: Any = None
        repo = self._checkpoint_repo
        self._writer = repo if isinstance(repo, ConnectionCheckpointWriter) else None
        self._writer_ready = False

    def _connection(self) -> Any:
        if self._current_connection is None:
            raise RuntimeError(
                f"{type(self).__name__}: a (conn, event) handler ran outside handle()"
            )
        return self._current_connection

    @asynccontextmanager
    async def _transaction(self, may_end_early: bool = False) -> AsyncIterator[Any]:
        """A session transaction whose connection the handlers get; commits on success.
        `may_end_early`: `_process_batch` may stop at `max_transaction_seconds`."""
        if self._writer is not None and not self._writer_ready:
            # The checkpoint table gets created (if need be) before, not inside, the first
            # read-model transaction: on SQLite its creation would wait on that transaction.
            await self._checkpoint_repo.get_checkpoint(projection_name=self.projection_name)
            self._writer_ready = True
        clock = self._clock
        await clock.wait_turn()
        try:
            async with self._session_factory() as session, session.begin():
                self._current_connection = await session.connection()
                clock.begin(self._current_connection, may_end_early)
                try:
                    yield self._current_connection
                finally:
                    self._current_connection = None
        finally:
            clock.end()

    @property
    def commits_checkpoint(self) -> bool:
        """Whether the checkpoint commits in the read model's transaction (the repository can
        write through a connection); a `SubscriptionManager` then resumes from it exactly."""
        return self._writer is not None

    @traced(_HANDLE_SPAN, attributes_of=_handle_attributes, once=True)
    async def handle(
        self, event: DomainEvent, *, position: int | None = None, cursor: str | None = None
    ) -> None:
        """`handle` in one transaction with the checkpoint; `position` and `cursor` (where a
        reader resumes after this event) are written with it when given."""
        if position is None:
            await super().handle(event)
            return

        async def attempt(one: DomainEvent) -> None:
            await self.commit_batch([one], position=position, cursor=cursor)

        await self._with_retries(event, attempt)
        if self._writer is None:
            await super()._record_checkpoint(event)

    async def _process_event(self, event: DomainEvent) -> None:
        await self.commit_batch([event])

    async def _record_checkpoint(self, event: DomainEvent) -> None:
        if self._writer is None:  # otherwise it committed with the read model
            await super()._record_checkpoint(event)

    async def _process_batch(self, conn: Any, events: Sequence[DomainEvent]) -> int | None:
        """Apply a page of events inside the open transaction (one handler call each); how
        many it applied, from the first (None: all).

        It stops after the event during which the transaction reached
        `max_transaction_seconds`; the rest go into the next transaction. Override to write
        the page with fewer statements (e.g. one executemany): handlers that issue one
        statement per event pay one database round trip each.
        """
        expired = self._clock.expired
        for done, event in enumerate(events):
            if done and expired():
                return done
            await self._dispatch(event)
        return None

    async def commit_batch(
        self,
        events: Sequence[DomainEvent],
        *,
        position: int | None = None,
        cursor: str | None = None,
        positions: Sequence[int] | None = None,
    ) -> int:
        """Apply `events` and write the checkpoint (with `position` and `cursor` when given)
        in one transaction; on any error it rolls back and raises (no retries).

        Returns how many of `events` it applied: fewer than all when the transaction reached
        `max_transaction_seconds` first, and the caller hands over the rest again. The
        checkpoint then names the last event applied, with its global position from
        `positions` (one per event) and no cursor, from which a reader resumes exactly. Events
        given a `position` without `positions` are applied in one transaction whatever it
        takes, as their checkpoint could not say where the transaction stopped.
        """
        if not events:
            return 0
        async with self._transaction(position is None or positions is not None) as conn:
            if len(events) == 1:
                await self._dispatch(events[0])
                applied = 1
            else:
                applied = applied_count(self, await self._process_batch(conn, events), len(events))
                while positions is not None and 0 < applied < len(events) and (
                    positions[applied] == positions[applied - 1]
                ):  # a cut inside a split's parts (one stored row): finish the unit first
                    await self._dispatch(events[applied])
                    applied += 1
            if self._writer is not None:
                if applied < len(events):
                    position = None if positions is None else positions[applied - 1]
                    cursor = None
                last = events[applied - 1]
                await self._writer.update_checkpoint_on(
                    conn, self.projection_name, last.event_id, last.event_type, applied,
                    position=position, cursor=cursor,
                )
        return applied

    async def handle_batch(
        self,
        events: Sequence[DomainEvent],
        *,
        position: int | None = None,
        cursor: str | None = None,
    ) -> None:
        """Apply `events` (in order) in one transaction with one checkpoint write, or in
        several when one reaches `max_transaction_seconds` (see `commit_batch`).

        If any event fails, its transaction is rolled back and its events and the rest are
        handled again one event at a time through `handle`, so retries and dead-lettering
        apply per event as usual (then only the last event's checkpoint carries `position` and
        `cursor`, which mark the end of the page).
        """
        if not events:
            return
        done = 0
        try:
            while done < len(events):
                done += await self.commit_batch(events[done:], position=position, cursor=cursor)
        except Exception as exc:
            rest = events[done:]
            logger.warning(
                "%s: a page of %d events failed (%s); handling them one by one",
                self.projection_name,
                len(rest),
                exc,
            )
            for event in rest[:-1]:
                await self.handle(event)
            await self.handle(rest[-1], position=position, cursor=cursor)
            return
        if self._writer is None:
            for event in events:
                await super()._record_checkpoint(event)

