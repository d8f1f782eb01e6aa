"""`SyncSubscriptionRunner`: subscriptions (projections, handlers) started and stopped from
synchronous code, running in the background on a portal's event loop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from eventsource.repositories.checkpoint import CheckpointRepository
from eventsource.subscriptions.config import SubscriptionConfig
from eventsource.subscriptions.exceptions import SubscriptionStateError
from eventsource.subscriptions.manager import SubscriptionManager
from eventsource.sync._bound import Factory, PortalBound, backend_of, construct
from eventsource.sync.exceptions import SyncConfigurationError
from eventsource.sync.store import SyncEventStore

if TYPE_CHECKING:
    from eventsource.bus.interface import EventBus
    from eventsource.events.base import DomainEvent
    from eventsource.protocols import FlexibleEventSubscriber
    from eventsource.repositories.dlq import DLQRepository
    from eventsource.stores.interface import EventStore
    from eventsource.subscriptions.health import ManagerHealth
    from eventsource.subscriptions.shutdown import ShutdownResult
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["SyncSubscriptionRunner"]

T = TypeVar("T")

_CAUGHT_UP_POLL = 0.02  # seconds between lag checks in wait_until_caught_up


class SyncSubscriptionRunner(PortalBound[SubscriptionManager]):
    """A `SubscriptionManager` driven from synchronous code: `start()` returns at once and
    the subscriptions read the store in the background, on the portal's loop, until `stop()`
    (or `close()`, or the end of a `with` block, or interpreter exit).

    A subscriber's synchronous `handle(event)` runs in a worker thread of the runner, one
    event after another per subscription: there it may block, and may use the synchronous API
    (a repository, a store), which on the loop itself would raise `PortalThreadError`. An
    async `handle` runs on the loop (it must await, not block). A handler that overruns the
    subscription's `processing_timeout` is recorded as failed, but its thread cannot be
    stopped: it runs to its end.

    Checkpoints are kept in the store's own database unless `checkpoint_repo` (a factory) says
    otherwise: the same SQLite file or PostgreSQL engine, in memory for an in-memory store.
    """

    def __init__(
        self,
        event_store: SyncEventStore,
        checkpoint_repo: Factory[CheckpointRepository] | None = None,
        *,
        event_bus: Factory[EventBus] | None = None,
        dlq_repo: Factory[DLQRepository] | None = None,
        handler_threads: int = 4,
        shutdown_timeout: float = 30.0,
        drain_timeout: float = 10.0,
        enable_tracing: bool = True,
    ) -> None:
        if not isinstance(event_store, SyncEventStore):
            raise SyncConfigurationError(
                f"SyncSubscriptionRunner needs a SyncEventStore, got {type(event_store).__name__}"
            )
        for name, factory in (("checkpoint_repo", checkpoint_repo), ("event_bus", event_bus),
                              ("dlq_repo", dlq_repo)):
            if factory is not None and not callable(factory):
                raise SyncConfigurationError(
                    f"{name} must be a factory run on the portal (e.g. lambda: repo), got a "
                    f"{type(factory).__name__}"
                )
        if handler_threads < 1:
            raise SyncConfigurationError(f"handler_threads must be >= 1, got {handler_threads}")
        self._event_store = event_store
        self._executor = ThreadPoolExecutor(handler_threads, "eventsource-sync-handler")

        async def build() -> SubscriptionManager:
            store = await event_store._resolve()
            checkpoints = (
                await construct(checkpoint_repo, None, "checkpoint_repo")
                if checkpoint_repo is not None
                else _checkpoints_beside(store)
            )
            return SubscriptionManager(
                store,
                await construct(event_bus, None, "event_bus") if event_bus is not None else None,
                checkpoints,
                shutdown_timeout,
                drain_timeout,
                await construct(dlq_repo, None, "dlq_repo") if dlq_repo is not None else None,
                enable_tracing=enable_tracing,
            )

        self._setup(build, self._shut_down, event_store.portal, "SyncSubscriptionRunner")

    @property
    def event_store(self) -> SyncEventStore:
        return self._event_store

    def subscribe(
        self,
        subscriber: FlexibleEventSubscriber,
        config: SubscriptionConfig | None = None,
        name: str | None = None,
    ) -> Subscription:
        """Register a subscriber (anything with `subscribed_to()` and `handle(event)`);
        started at once when the runner is running. `name` defaults to its class name."""
        handle = getattr(subscriber, "handle", None)
        if callable(handle) and not inspect.iscoroutinefunction(handle):
            name = name or type(subscriber).__name__
            subscriber = _Threaded(subscriber, self._executor)
        return self.run(lambda manager: manager.subscribe(subscriber, config, name))

    def unsubscribe(self, name: str) -> bool:
        return self.run(lambda manager: manager.unsubscribe(name))

    def start(self, subscription_names: Sequence[str] | None = None) -> dict[str, Exception | None]:
        """Start all (or the named) subscriptions and return: they catch up and follow the
        store in the background. Maps each name to None or the error that kept it from
        starting."""
        return self.run(lambda manager: manager.start(subscription_names))

    def stop(self, timeout: float = 30.0) -> ShutdownResult:
        """Stop reading, let handlers finish (up to `timeout`), save the checkpoints."""
        return self.run(lambda manager: manager.stop(timeout))

    def wait_until_caught_up(self, timeout: float = 30.0) -> bool:
        """Block until every running subscription has read every event committed so far
        (True), or `timeout` seconds passed first (False). `SubscriptionStateError` when the
        runner is not running."""
        return self.run(lambda manager: _caught_up(manager, timeout))

    def get_subscription(self, name: str) -> Subscription | None:
        return self.run(lambda manager: _now(manager.get_subscription(name)))

    def health_check(self) -> ManagerHealth:
        return self.run(lambda manager: manager.health_check())

    @property
    def is_running(self) -> bool:
        return self.run(lambda manager: _now(manager.is_running))

    def __enter__(self) -> SyncSubscriptionRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _shut_down(self, manager: SubscriptionManager) -> None:
        try:
            await manager.stop()
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)


class _Threaded:
    """A subscriber whose synchronous `handle` runs in a worker thread, off the loop."""

    def __init__(self, subscriber: FlexibleEventSubscriber, executor: ThreadPoolExecutor) -> None:
        self._subscriber = subscriber
        self._executor = executor

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return self._subscriber.subscribed_to()

    async def handle(self, event: DomainEvent) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._subscriber.handle, event)

def _checkpoints_beside(store: EventStore) -> CheckpointRepository:
    """Checkpoints in the store's own database (see `SyncSubscriptionRunner`)."""
    backend = backend_of(store, "checkpoints")
    if backend == "sqlite":
        from eventsource.repositories.sqlite import SQLiteCheckpointRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        assert isinstance(store, SQLiteEventStore)
        return SQLiteCheckpointRepository(store)
    if backend == "postgresql":
        from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
        from eventsource.stores.postgresql import PostgreSQLEventStore

        assert isinstance(store, PostgreSQLEventStore)
        return PostgreSQLCheckpointRepository(store.session_factory)
    from eventsource.repositories.checkpoint import InMemoryCheckpointRepository

    return InMemoryCheckpointRepository()


async def _caught_up(manager: SubscriptionManager, timeout: float) -> bool:
    if not manager.is_running:
        raise SubscriptionStateError("The runner is not running: call start() first")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    store = manager.event_store
    while True:
        lags = [
            await store.committed_lag(manager.get_cursor(sub.name))
            for sub in manager.subscriptions
            if sub.is_running
        ]
        if not any(lags):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_CAUGHT_UP_POLL)


async def _now(value: T) -> T:
    return value
