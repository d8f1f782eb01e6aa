"""`SubscriptionManager`: runs subscribers over the store, from their start position, live."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsource._attributes import ReadOnly
from eventsource._lifecycle import AsyncContext
from eventsource.observability.metrics import observe_subscription_lag
from eventsource.observability.tracing import TracingMixin
from eventsource.subscriptions.config import SubscriptionConfig
from eventsource.subscriptions.error_handling import (
    AnyErrorCallback,
    ErrorCategory,
    ErrorHandlerRegistry,
    ErrorHandlingConfig,
    ErrorSeverity,
    SubscriptionErrorHandler,
)
from eventsource.subscriptions.exceptions import (
    SubscriptionAlreadyExistsError,
    SubscriptionConfigError,
    SubscriptionError,
)
from eventsource.subscriptions.health import HealthCheckConfig, LivenessStatus
from eventsource.subscriptions.monitoring import ManagerMonitoring
from eventsource.subscriptions.reader import SubscriptionReader
from eventsource.subscriptions.shutdown import ShutdownCoordinator, ShutdownPhase, ShutdownResult
from eventsource.subscriptions.subscription import PauseReason, Subscription, SubscriptionState
from eventsource.subscriptions.supervision import stop_readers, watch_store
from eventsource.subscriptions.transactional import accepts_cursor, transactional

if TYPE_CHECKING:
    from eventsource.bus.interface import EventBus
    from eventsource.events.base import DomainEvent
    from eventsource.protocols import FlexibleEventSubscriber
    from eventsource.repositories.checkpoint import CheckpointRepository
    from eventsource.repositories.dlq import DLQRepository
    from eventsource.stores.interface import EventStore
    from eventsource.subscriptions.subscription import SubscriptionStatus

__all__ = ["SubscriptionManager"]

logger = logging.getLogger(__name__)

_SHUTTING_DOWN = (ShutdownPhase.STOPPING, ShutdownPhase.DRAINING, ShutdownPhase.CHECKPOINTING)
_PAUSABLE = (SubscriptionState.CATCHING_UP, SubscriptionState.LIVE)
_LIVENESS_TIMEOUT = 5.0


class SubscriptionManager(AsyncContext, ManagerMonitoring, TracingMixin):
    """Catches subscribers up from the store, then keeps them live, with checkpoints.

    Every subscription reads only the store's commit-safe pages; the bus and the store's
    commit signal merely wake readers that have read everything (`poll_interval` is the
    fallback when neither does). A subscriber that commits its checkpoint with its read model
    (a `DatabaseProjection` over an SQL checkpoint repository) gets whole pages, checkpointed
    in its own transaction under its `projection_name` (see `subscriptions.transactional`).
    """

    poll_interval: float = 1.0

    def __init__(
        self,
        event_store: EventStore,
        event_bus: EventBus | None,
        checkpoint_repo: CheckpointRepository,
        shutdown_timeout: float = 30.0,
        drain_timeout: float = 10.0,
        dlq_repo: DLQRepository | None = None,
        error_handling_config: ErrorHandlingConfig | None = None,
        health_check_config: HealthCheckConfig | None = None,
        enable_tracing: bool = True,
    ) -> None:
        self._init_tracing(__name__, enable_tracing)
        self.event_store = event_store
        self.event_bus = event_bus
        self.checkpoint_repo = checkpoint_repo
        self.dlq_repo = dlq_repo
        self.shutdown_timeout = shutdown_timeout
        self.drain_timeout = drain_timeout
        self.error_handling_config = error_handling_config or ErrorHandlingConfig()
        ManagerMonitoring.__init__(self, health_check_config)
        self._callbacks = ErrorHandlerRegistry()
        self._subscriptions: dict[str, Subscription] = {}
        self._errors: dict[str, SubscriptionErrorHandler] = {}
        self._readers: dict[str, SubscriptionReader] = {}
        self._save_cursor = accepts_cursor(checkpoint_repo.save_position)
        self._lock = asyncio.Lock()
        self._running = False
        self._started_at: float | None = None
        self._phase = ShutdownPhase.STOPPED
        self._last_result: ShutdownResult | None = None
        self._shutdown = ShutdownCoordinator()
        self._watcher: asyncio.Task[None] | None = None
        if self.tracing_enabled:  # the eventsource.subscription.lag gauge reports these
            observe_subscription_lag(self)

    # -- registration ---------------------------------------------------------------------

    async def subscribe(
        self,
        subscriber: FlexibleEventSubscriber,
        config: SubscriptionConfig | None = None,
        name: str | None = None,
    ) -> Subscription:
        """Register `subscriber`; started at once if the manager is running."""
        if not callable(getattr(subscriber, "handle", None)) or not callable(
            getattr(subscriber, "subscribed_to", None)
        ):
            raise SubscriptionConfigError(
                f"{type(subscriber).__name__} needs subscribed_to() and handle(event)"
            )
        committer = transactional(subscriber)
        if committer is None:
            name = name or type(subscriber).__name__
        else:
            # Its checkpoint row is the subscription's: one name for both, or two rows.
            name = name or committer.projection_name
            if name != committer.projection_name:
                raise SubscriptionConfigError(
                    f"{type(subscriber).__name__} commits its checkpoint under its "
                    f"projection_name {committer.projection_name!r}: subscribe it under that "
                    f"name, not {name!r} (or override projection_name)"
                )
        async with self._lock:
            if name in self._subscriptions:
                raise SubscriptionAlreadyExistsError(name)
            subscription = Subscription(name, config or SubscriptionConfig(), subscriber)
            self._subscriptions[name] = subscription
            self._errors[name] = SubscriptionErrorHandler(
                name, self.error_handling_config, callbacks=self._callbacks
            )
            subscription.keep_errors_in(self._errors[name].recent_errors)
            if self._running:
                await self._start_one(name)
        return subscription

    async def unsubscribe(self, name: str) -> bool:
        """Stop the subscription if it runs, and forget it."""
        async with self._lock:
            if name not in self._subscriptions:
                return False
            if name in self._readers:
                await self._stop_readers([name], self.shutdown_timeout)
            del self._subscriptions[name]
            del self._errors[name]
        return True

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    subscription_names: ReadOnly[list[str]] = ReadOnly("_subscriptions", list)
    """The names of the registered subscriptions, in the order they were added."""
    subscription_count: ReadOnly[int] = ReadOnly("_subscriptions", len)
    """How many subscriptions are registered."""

    def get_subscription(self, name: str) -> Subscription | None:
        return self._subscriptions.get(name)

    def get_cursor(self, name: str) -> str | None:
        """The store cursor a running subscription has read up to (None before it starts)."""
        reader = self._readers.get(name)
        return reader.cursor if reader is not None else None

    def get_all_statuses(self) -> dict[str, SubscriptionStatus]:
        return {name: sub.get_status() for name, sub in self._subscriptions.items()}

    def get_error_handler(self, name: str) -> SubscriptionErrorHandler | None:
        return self._errors.get(name)

    def _monitored(self) -> dict[str, tuple[Subscription, SubscriptionErrorHandler]]:
        return {name: (sub, self._errors[name]) for name, sub in self._subscriptions.items()}

    # -- lifecycle ------------------------------------------------------------------------

    async def start(
        self, subscription_names: Sequence[str] | None = None, concurrent: bool = True
    ) -> dict[str, Exception | None]:
        """Start all (or the named) subscriptions; maps each name to None or its start error.

        Returns once each has handed over its first page (or found nothing to read, been paused,
        or found the store down: it retries on its own), so a subscriber that fails for good on
        its first events (state `ERROR`) is reported here with its error. Catch-up beyond the
        first page goes on after `start()` returns.
        """
        async with self._lock:
            if self._running and subscription_names is None:
                return {}
            if not self._running:
                self._begin()
            names = list(subscription_names or self._subscriptions)
            results: dict[str, Exception | None] = {}
            if concurrent:
                outcomes = await asyncio.gather(
                    *(self._start_until_under_way(n) for n in names), return_exceptions=True
                )
            else:
                outcomes = []
                for n in names:
                    try:
                        outcomes.append(await self._start_until_under_way(n))
                    except Exception as exc:
                        outcomes.append(exc)
            for n, outcome in zip(names, outcomes, strict=True):
                if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                    raise outcome
                results[n] = outcome
                if outcome is not None:
                    logger.error("Subscription %s failed to start: %s", n, outcome)
            return results

    def _begin(self) -> None:
        self._running = True
        self._started_at = time.monotonic()
        self._phase = ShutdownPhase.RUNNING
        if self.event_bus is not None:
            self.event_bus.subscribe_to_all_events(self._wake_readers)
        self._watcher = asyncio.create_task(watch_store(self), name="subscriptions:store-watch")

    def _share_checkpoint_row(self, subscription: Subscription) -> None:
        """A projection whose checkpoint row is the one this subscription saves (same repository,
        same name) skips its own per-event checkpoint: the subscription writes it per page."""
        projection = subscription.subscriber
        deferred = getattr(projection, "handle_checkpointed_elsewhere", None)
        if (
            deferred is not None
            and getattr(projection, "checkpoint_repo", None) is self.checkpoint_repo
            and getattr(projection, "projection_name", None) == subscription.name
            and not getattr(projection, "commits_checkpoint", False)
        ):
            subscription.handler = deferred

    def _wake_readers(self, _event: DomainEvent | None = None) -> None:
        """Bus wildcard handler and store-signal hook: only wakes readers, delivers nothing."""
        for reader in self._readers.values():
            reader.wake.set()

    async def _start_one(self, name: str) -> None:
        subscription = self._subscriptions.get(name)
        if subscription is None:
            raise SubscriptionConfigError(f"No subscription named {name!r}")
        if name in self._readers:
            return
        self._share_checkpoint_row(subscription)
        reader = SubscriptionReader(
            subscription, self.event_store, self.checkpoint_repo, self.dlq_repo,
            self._errors[name], self.error_handling_config,
            save_cursor=self._save_cursor, poll_interval=self.poll_interval,
            tracer=self._tracer if self.tracing_enabled else None,
        )
        subscription.mark_started()
        try:
            # Pin the start position now ("end" means the end as of start()); if the store is
            # down, the reader keeps trying on its own.
            await reader.resolve_start()
        except Exception as exc:
            subscription.store_reachable = False
            subscription.last_error = exc
        self._readers[name] = reader
        reader.task = asyncio.create_task(reader.run(), name=f"subscription:{name}")
        reader.task.add_done_callback(lambda task: self._reader_done(name, task))

    async def _start_until_under_way(self, name: str) -> Exception | None:
        """Start `name`, wait until its reader is under way; the error it stopped on, if any.

        The wait is bounded by the subscription's `processing_timeout` (plus its slack): a
        first event taking longer is a slow or stuck handler, which the reader handles itself.
        """
        await self._start_one(name)
        reader = self._readers[name]
        assert reader.task is not None  # set by _start_one
        subscription = self._subscriptions[name]
        waiter = asyncio.ensure_future(reader.under_way.wait())
        try:
            # A reader task cancelled before it ran never sets `under_way`.
            await asyncio.wait(
                (waiter, reader.task), timeout=subscription.config.processing_timeout * 1.1 + 1,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
        if subscription.state is not SubscriptionState.ERROR:
            return None
        error = subscription.last_error
        if isinstance(error, Exception):
            return error
        return SubscriptionError(f"Subscription {name} stopped in error while starting: {error!r}")

    def _reader_done(self, name: str, task: asyncio.Task[None]) -> None:
        """A reader task that ends unasked is a crash: state ERROR (unhealthy, not ready),
        logged."""
        error: BaseException | None
        if task.cancelled():
            reader = self._readers.get(name)
            if reader is None or reader.stop_requested:
                return
            error = SubscriptionError(
                f"Subscription {name} stopped: its reader task was cancelled by something other "
                "than the manager"
            )
        else:
            error = task.exception()
            if error is None:
                return
        subscription = self._subscriptions.get(name)
        if subscription is not None and subscription.state is not SubscriptionState.STOPPED:
            subscription.fail(error)
        logger.error("Subscription %s crashed", name, exc_info=error)

    async def stop(
        self, timeout: float = 30.0, subscription_names: Sequence[str] | None = None
    ) -> ShutdownResult:
        """Stop intake, drain the current pages, save final checkpoints."""
        async with self._lock:
            if not self._running:
                return ShutdownResult(ShutdownPhase.STOPPED, 0.0, 0, 0)
            if subscription_names is not None:
                return await self._stop_readers(list(subscription_names), timeout)
            self._phase = ShutdownPhase.STOPPING
            if self.event_bus is not None:
                self.event_bus.unsubscribe_from_all_events(self._wake_readers)
            result = await self._stop_readers(
                list(self._readers), timeout, reason=self._shutdown.reason
            )
            if self._watcher is not None:
                self._watcher.cancel()
                await asyncio.gather(self._watcher, return_exceptions=True)
                self._watcher = None
            self._running = False
            self._phase = result.phase
            self._last_result = result
            return result

    async def _stop_readers(
        self, names: list[str], timeout: float, reason: str | None = None
    ) -> ShutdownResult:
        """Stop the named readers (see `supervision.stop_readers`) and forget them; a full stop
        moves the shutdown phase along."""
        readers = [(name, self._readers[name]) for name in names if name in self._readers]
        full = self._phase is ShutdownPhase.STOPPING
        result = await stop_readers(
            readers, timeout, self.drain_timeout, self._enter_phase if full else None, reason
        )
        for name, _ in readers:
            self._readers.pop(name, None)
        return result

    def _enter_phase(self, phase: ShutdownPhase) -> None:
        self._phase = phase

    async def _enter_context(self) -> None:
        await self.start()

    async def _exit_context(self) -> None:
        await self.stop(timeout=self.shutdown_timeout)

    async def run_until_shutdown(self, shutdown_timeout: float | None = None) -> ShutdownResult:
        """Start, run until SIGTERM/SIGINT or `request_shutdown()`, then stop gracefully."""
        self._shutdown.reset()
        self.register_signals()
        try:
            await self.start()
            await self._shutdown.wait()
            return await self.stop(timeout=shutdown_timeout or self.shutdown_timeout)
        finally:
            self.unregister_signals()

    def request_shutdown(self, reason: str = "requested") -> None:
        self._shutdown.request(reason)

    def register_signals(self) -> None:
        self._shutdown.register_signals(self._shutdown.request)  # reason: the signal's name

    def unregister_signals(self) -> None:
        self._shutdown.unregister_signals()

    @property
    def is_shutting_down(self) -> bool:
        return self._phase in _SHUTTING_DOWN

    is_running: ReadOnly[bool] = ReadOnly("_running")
    """Whether the manager has started and not stopped since."""

    async def liveness_check(self) -> LivenessStatus:
        details: dict[str, Any] = {"running": self._running}
        try:
            async with asyncio.timeout(_LIVENESS_TIMEOUT):
                await self._lock.acquire()
        except TimeoutError:
            return LivenessStatus(False, "Manager lock not acquired within "
                                  f"{_LIVENESS_TIMEOUT}s", details)
        self._lock.release()
        return LivenessStatus(True, "Manager is alive and responsive", details)

    shutdown_phase: ReadOnly[ShutdownPhase] = ReadOnly("_phase")
    """Where the manager is in its start/stop cycle."""
    last_shutdown_result: ReadOnly[ShutdownResult | None] = ReadOnly("_last_result")
    """What the last `stop()` did (None before any)."""

    @property
    def uptime_seconds(self) -> float:
        if not self._running or self._started_at is None:
            return 0.0
        return time.monotonic() - self._started_at

    # -- errors ---------------------------------------------------------------------------

    def on_error(self, callback: AnyErrorCallback) -> None:
        self._callbacks.all.append(callback)

    def on_error_category(self, category: ErrorCategory, callback: AnyErrorCallback) -> None:
        self._callbacks.by_category.setdefault(category, []).append(callback)

    def on_error_severity(self, severity: ErrorSeverity, callback: AnyErrorCallback) -> None:
        self._callbacks.by_severity.setdefault(severity, []).append(callback)

    # -- pause / resume -------------------------------------------------------------------

    async def pause_subscription(self, name: str, reason: PauseReason | None = None) -> bool:
        """Stop handing events to `name`; it keeps its position, new events wait in the store.

        False when there is nothing to pause: unknown, not running, or already paused.
        """
        reader = self._readers.get(name)
        subscription = self._subscriptions.get(name)
        if reader is None or subscription is None or subscription.state not in _PAUSABLE:
            return False
        await subscription.pause(reason or PauseReason.MANUAL)
        reader.pause()
        return True

    async def resume_subscription(self, name: str) -> bool:
        reader = self._readers.get(name)
        subscription = self._subscriptions.get(name)
        if reader is None or subscription is None or not subscription.is_paused:
            return False
        await subscription.resume()
        reader.resume()
        return True

    async def pause_all(self, reason: PauseReason | None = None) -> dict[str, bool]:
        return {name: await self.pause_subscription(name, reason) for name in self._subscriptions}

    async def resume_all(self) -> dict[str, bool]:
        return {name: await self.resume_subscription(name) for name in self._subscriptions}

    @property
    def paused_subscriptions(self) -> list[Subscription]:
        return [s for s in self._subscriptions.values() if s.is_paused]

    @property
    def paused_subscription_names(self) -> list[str]:
        return [s.name for s in self.paused_subscriptions]
