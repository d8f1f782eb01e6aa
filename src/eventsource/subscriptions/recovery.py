"""What happens when a subscriber fails on an event: retries, classification, DLQ, callbacks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsource.exceptions import ProjectionError
from eventsource.subscriptions.config import CorruptEventPolicy
from eventsource.subscriptions.error_handling import ErrorInfo
from eventsource.subscriptions.retry import calculate_backoff

if TYPE_CHECKING:
    from eventsource.exceptions import CorruptEventError
    from eventsource.repositories.dlq import DLQRepository
    from eventsource.stores.interface import StoredEvent
    from eventsource.subscriptions.error_handling import (
        ErrorClassification,
        ErrorHandlingConfig,
        SubscriptionErrorHandler,
    )
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["FailureRecovery", "HaltSubscription"]

logger = logging.getLogger("eventsource.subscriptions.manager")


class HaltSubscription(Exception):  # noqa: N818 - control flow inside the reader, not an error type
    """The subscription must stop in ERROR: an error it may not skip."""


class FailureRecovery:
    """Retries a failed event per the subscription's config, else reports and dead-letters it."""

    def __init__(
        self,
        subscription: Subscription,
        errors: SubscriptionErrorHandler,
        error_config: ErrorHandlingConfig,
        dlq: DLQRepository | None,
        sleep: Callable[[float], Awaitable[None]],
        stopping: Callable[[], bool],
    ) -> None:
        self.sub = subscription
        self.errors = errors
        self.error_config = error_config
        self.dlq = dlq
        self._sleep = sleep
        self.stopping = stopping
        self._processed_at_failure = 0

    async def recover(
        self,
        stored: StoredEvent,
        error: Exception,
        attempt_again: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Retry a failed event per the config (by `attempt_again()`, else the handler); True
        if a retry succeeded.

        Otherwise count, report and dead-letter it, and raise `HaltSubscription` when the
        subscription may not go past it.
        """
        sub, errors = self.sub, self.errors
        classification = errors.classify(error)
        attempts = 1
        if self.error_config.retries and classification.retryable:
            retry = sub.config.get_retry_config()
            for attempt in range(retry.max_retries):
                await self._sleep(calculate_backoff(attempt, retry))
                if self.stopping():
                    break
                attempts += 1
                try:
                    async with asyncio.timeout(sub.config.processing_timeout):
                        await (attempt_again() if attempt_again else sub.handler(stored.event))
                except Exception as again:
                    error, classification = again, errors.classify(again)
                    if not classification.retryable:
                        break
                else:
                    if sub.circuit_breaker is not None:
                        await sub.circuit_breaker.record_success()
                    return True
        return await self._give_up(stored, error, classification, attempts)

    async def _give_up(
        self,
        stored: StoredEvent,
        error: Exception,
        classification: ErrorClassification,
        attempts: int,
    ) -> bool:
        sub = self.sub
        sub.events_failed += 1
        sub.last_error = error
        skip = sub.config.continue_on_error and self.error_config.skips_failures
        info = ErrorInfo.from_exception(
            error, classification, event_id=stored.event_id, event_type=stored.event_type,
            position=stored.global_position, subscription_name=sub.name,
            retry_count=attempts - 1,
        )
        if skip and self._dead_lettered_by_subscriber(error):
            info.sent_to_dlq = True
            sub.events_dlq += 1
        elif skip and self.dlq is not None and self.error_config.dlq_enabled:
            try:
                await self.dlq.add_failed_event(
                    event_id=stored.event_id,
                    projection_name=sub.name,
                    event_type=stored.event_type,
                    event_data=stored.event.model_dump(mode="json"),
                    error=error,
                    retry_count=attempts,
                )
            except Exception:
                logger.exception("Subscription %s could not write to the DLQ", sub.name)
            else:
                info.sent_to_dlq = True
                sub.events_dlq += 1
        now = time.monotonic()
        await self.errors.record(info, now)
        if not skip or self.errors.should_stop(now):
            raise HaltSubscription(str(error)) from error
        breaker = sub.circuit_breaker
        if breaker is not None:
            if sub.events_processed > self._processed_at_failure:
                await breaker.record_success()  # the breaker counts consecutive failures only
            self._processed_at_failure = sub.events_processed
            await breaker.record_failure()
            if breaker.is_open:
                # Give the failing dependency time to recover before the next event.
                logger.warning("Subscription %s: circuit open, pausing %.1fs", sub.name,
                               breaker.config.recovery_timeout)
                await self._sleep(breaker.config.recovery_timeout)
        return False

    async def unreadable(self, corrupt: CorruptEventError) -> UUID:
        """Report a stored row the store cannot read and dead-letter it (raw payload and error)
        per `on_corrupt_event`; returns the id it was dead-lettered under.

        Raises `HaltSubscription` when the subscription must stop at the row: the policy says
        halt, or there is no DLQ to keep the row in (skipping it unkept would lose it). A failed
        DLQ write propagates before anything is counted: the caller reads the row again later.
        """
        sub, dlq = self.sub, self.dlq
        event_id = _dead_letter_id(corrupt)
        halt = None
        if sub.config.on_corrupt_event is CorruptEventPolicy.HALT:
            halt = "on_corrupt_event is 'halt'"
        elif dlq is None or not self.error_config.dlq_enabled:
            halt = ("there is no dead-letter queue to keep it in (give the SubscriptionManager a "
                    "dlq_repo, or set on_corrupt_event='halt' to stop on purpose)")
        info = ErrorInfo.from_exception(
            corrupt, self.errors.classify(corrupt), event_id=event_id,
            event_type=corrupt.event_type, position=corrupt.position or 0,
            subscription_name=sub.name,
        )
        if halt is None and dlq is not None:
            await dlq.add_failed_event(
                event_id=event_id, projection_name=sub.name, event_type=corrupt.event_type,
                event_data=_raw_event_data(corrupt.payload), error=corrupt, retry_count=0,
            )
            info.sent_to_dlq = True
            sub.events_dlq += 1
        sub.events_failed += 1
        sub.events_corrupt += 1
        sub.last_error = corrupt
        now = time.monotonic()
        await self.errors.record(info, now)
        if halt is None and self.errors.should_stop(now):
            halt = "its error budget is spent (max_errors_before_stop / error_rate_threshold)"
        if halt is not None:
            raise HaltSubscription(
                f"stopped at the unreadable row at global position {corrupt.position}: {halt}"
            ) from corrupt
        return event_id

    def _dead_lettered_by_subscriber(self, error: Exception) -> bool:
        """A projection raises `ProjectionError` after writing its own dead letter: when that
        went to our DLQ too, a second row would overwrite its attempt count."""
        subscriber_dlq = getattr(self.sub.subscriber, "dlq_repo", None)
        return (
            isinstance(error, ProjectionError)
            and self.dlq is not None
            and subscriber_dlq is self.dlq
        )


def _dead_letter_id(corrupt: CorruptEventError) -> UUID:
    """The row's event id; a row written by hand may hold one that is no UUID, and is then
    kept under an id derived from its position (the DLQ needs a UUID)."""
    try:
        return UUID(str(corrupt.event_id))
    except ValueError:
        return uuid5(NAMESPACE_URL, f"eventsource:unreadable-row:{corrupt.position}")


def _raw_event_data(payload: object) -> dict[str, Any]:
    """A row's payload for the DLQ: its JSON object as stored (so `retry_dead_letters` can hand
    it over once its class reads it), else its text under "raw_payload"."""
    if isinstance(payload, dict):
        return payload
    try:
        data = json.loads(payload) if isinstance(payload, str | bytes) else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    return {"raw_payload": payload.decode("utf-8", "replace") if isinstance(payload, bytes)
            else str(payload)}
