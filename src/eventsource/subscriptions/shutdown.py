"""Graceful shutdown: phases, the result report, OS signal handling, and a coordinator that
runs a stop, drain, checkpoint, close sequence under timeouts (0.2.0's `ShutdownCoordinator`)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum

from eventsource._checks import greater_than
from eventsource.exceptions import InvalidHandlerError
from eventsource.types import JSON

__all__ = ["ShutdownCoordinator", "ShutdownPhase", "ShutdownReason", "ShutdownResult"]

logger = logging.getLogger(__name__)


class ShutdownPhase(Enum):
    """How far a graceful shutdown has got: stopping, draining, checkpointing, stopped, forced."""

    RUNNING = "running"
    STOPPING = "stopping"
    DRAINING = "draining"
    CHECKPOINTING = "checkpointing"
    STOPPED = "stopped"
    FORCED = "forced"


@dataclass(frozen=True)
class ShutdownResult:
    """What a stop did: how long, how many subscriptions and events, whether it was forced and
    what it had to abandon."""

    phase: ShutdownPhase
    duration_seconds: float
    subscriptions_stopped: int
    events_drained: int
    checkpoints_saved: int = 0
    forced: bool = False
    error: str | None = None
    reason: str | None = None
    in_flight_at_start: int = 0
    events_not_drained: int = 0
    abandoned: tuple[str, ...] = ()
    """Subscriptions whose handler ignored cancellation, left running when stop() returned."""

    @property
    def success(self) -> bool:
        return not self.forced and self.error is None

    def to_dict(self) -> JSON:
        """The result as plain JSON values (the phase by its value)."""
        data = asdict(self)
        data["phase"] = self.phase.value
        data["abandoned"] = list(self.abandoned)
        return data


class ShutdownReason(StrEnum):
    """What asked for the shutdown. A `str`, so it compares equal to its value."""

    SIGNAL_SIGTERM = "signal_sigterm"
    SIGNAL_SIGINT = "signal_sigint"
    PROGRAMMATIC = "programmatic"
    HEALTH_CHECK = "health_check"
    TIMEOUT = "timeout"
    DOUBLE_SIGNAL = "double_signal"


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_BY_SIGNAL = {"SIGTERM": ShutdownReason.SIGNAL_SIGTERM, "SIGINT": ShutdownReason.SIGNAL_SIGINT}
_POST_HOOK_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 5.0
Hook = Callable[[], Awaitable[None]]
Step = Callable[[], Awaitable[int]]


def _coroutine_function(what: str, callback: object) -> None:
    if not inspect.iscoroutinefunction(callback):
        raise InvalidHandlerError(f"{what} must be an async function, got {callback!r}")


class ShutdownCoordinator:
    """Turns SIGTERM/SIGINT (or `request_shutdown()`) into a shutdown request, and runs a
    graceful shutdown sequence under timeouts.

    A first signal requests shutdown (`wait_for_shutdown()` returns, the `on_shutdown`
    callbacks run); a second one while shutting down forces it (`phase` FORCED). `shutdown()`
    runs the pre-shutdown hooks, then `stop_func` (STOPPING), `drain_func` (DRAINING, with
    `checkpoint_func` called every `checkpoint_interval` seconds meanwhile), `checkpoint_func`
    (CHECKPOINTING) and `close_func`, each within its timeout and all within `timeout`, then
    the post-shutdown hooks with the result. The manager uses one for its signals.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        drain_timeout: float = 10.0,
        checkpoint_timeout: float = 5.0,
        checkpoint_interval: float = 5.0,
    ) -> None:
        greater_than("timeout", timeout, 0)
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self.checkpoint_timeout = checkpoint_timeout
        self.checkpoint_interval = checkpoint_interval
        self._requested = asyncio.Event()
        self._installed: list[signal.Signals] = []
        self.reason: str | None = None
        self._phase = ShutdownPhase.RUNNING
        self._on_shutdown: list[Hook] = []
        self._pre_hooks: list[tuple[Hook, float]] = []
        self._post_hooks: list[Callable[[ShutdownResult], Awaitable[None]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- requests -------------------------------------------------------------------------

    @property
    def is_requested(self) -> bool:
        return self._requested.is_set()

    is_shutting_down = is_requested

    @property
    def phase(self) -> ShutdownPhase:
        """RUNNING until `shutdown()` moves it along (or a second signal forces it)."""
        return self._phase

    @property
    def is_forced(self) -> bool:
        return self._phase is ShutdownPhase.FORCED

    def request(self, reason: str = ShutdownReason.PROGRAMMATIC) -> None:
        """Ask for shutdown (the first reason given is kept)."""
        if not self._requested.is_set():
            self.reason = reason
            self._requested.set()

    def request_shutdown(self, reason: ShutdownReason = ShutdownReason.PROGRAMMATIC) -> None:
        """Ask for shutdown without a signal; `wait_for_shutdown()` returns."""
        self.request(reason)

    def reset(self) -> None:
        self._requested.clear()
        self.reason = None
        self._phase = ShutdownPhase.RUNNING

    async def wait(self) -> None:
        await self._requested.wait()

    wait_for_shutdown = wait

    def set_in_flight_count(self, count: int) -> None:
        """How many events were in flight when shutdown began (the result reports how many of
        them were not drained)."""
        self._in_flight = count

    # -- callbacks and hooks --------------------------------------------------------------

    def on_shutdown(self, callback: Hook) -> None:
        """Run `callback` (async, no arguments) when a signal requests shutdown."""
        self._on_shutdown.append(callback)

    def remove_callback(self, callback: Hook) -> bool:
        if callback in self._on_shutdown:
            self._on_shutdown.remove(callback)
            return True
        return False

    def on_pre_shutdown(self, callback: Hook, timeout: float = 5.0) -> None:
        """Run `callback` before STOPPING, for at most `timeout` seconds; its failure or
        timeout is logged and the shutdown goes on."""
        _coroutine_function("A pre-shutdown hook", callback)
        greater_than("timeout", timeout, 0)
        self._pre_hooks.append((callback, timeout))

    def on_post_shutdown(self, callback: Callable[[ShutdownResult], Awaitable[None]]) -> None:
        """Run `callback(result)` after the sequence, forced or not (5 s each at most)."""
        _coroutine_function("A post-shutdown hook", callback)
        self._post_hooks.append(callback)

    # -- signals --------------------------------------------------------------------------

    def register_signals(self, on_signal: Callable[[str], None] | None = None) -> None:
        """Install handlers on the running loop (where the platform allows it)."""
        loop = asyncio.get_running_loop()
        callback = on_signal or self._signalled
        for sig in _SIGNALS:
            if sig in self._installed:
                continue
            try:
                loop.add_signal_handler(sig, callback, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):
                logger.warning("Cannot install a handler for %s here", sig.name)
                continue
            self._installed.append(sig)

    def unregister_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _signalled(self, name: str) -> None:
        if self._requested.is_set():
            logger.warning("Second %s while shutting down: forcing the shutdown", name)
            self.reason = ShutdownReason.DOUBLE_SIGNAL
            self._phase = ShutdownPhase.FORCED
            return
        self.request(_BY_SIGNAL.get(name, ShutdownReason.PROGRAMMATIC))
        task = asyncio.get_running_loop().create_task(self._run_on_shutdown())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_on_shutdown(self) -> None:
        for callback in list(self._on_shutdown):
            await _guarded("Shutdown callback", callback(), None)

    # -- the sequence ---------------------------------------------------------------------

    async def shutdown(
        self,
        stop_func: Hook,
        drain_func: Step | None = None,
        checkpoint_func: Step | None = None,
        close_func: Hook | None = None,
    ) -> ShutdownResult:
        """Run the sequence (see the class); a phase over its time marks the result forced."""
        run = _Sequence(self, time.monotonic() + self.timeout)
        for hook, limit in self._pre_hooks:
            await _guarded("Pre-shutdown hook", hook(), limit)
        try:
            await run.phases(stop_func, drain_func, checkpoint_func, close_func)
        except Exception as error:
            logger.exception("Shutdown failed")
            run.forced, run.error = True, str(error)
        self._phase = ShutdownPhase.FORCED if run.forced or self.is_forced else (
            ShutdownPhase.STOPPED)
        result = run.result()
        for post in self._post_hooks:
            await _guarded("Post-shutdown hook", post(result), _POST_HOOK_TIMEOUT)
        return result

    def _enter(self, phase: ShutdownPhase) -> bool:
        """Move to `phase` unless a second signal has forced the shutdown."""
        if self.is_forced:
            return False
        self._phase = phase
        return True


async def _guarded(what: str, work: Awaitable[None], limit: float | None) -> None:
    try:
        async with asyncio.timeout(limit):
            await work
    except TimeoutError:
        logger.warning("%s timed out after %ss", what, limit)
    except Exception:
        logger.exception("%s failed", what)


class _Sequence:
    """One run of `ShutdownCoordinator.shutdown`: its deadline and what it counted."""

    def __init__(self, owner: ShutdownCoordinator, deadline: float) -> None:
        self.owner = owner
        self.deadline = deadline
        self.started = time.monotonic()
        self.forced = False
        self.error: str | None = None
        self.stopped = self.drained = self.saved = 0

    def _left(self, limit: float) -> float:
        return max(0.0, min(limit, self.deadline - time.monotonic()))

    async def _within(self, limit: float, work: Awaitable[int | None]) -> int:
        try:
            async with asyncio.timeout(self._left(limit)):
                return await work or 0
        except TimeoutError:
            self.forced = True
            return 0

    async def phases(
        self, stop: Hook, drain: Step | None, checkpoint: Step | None, close: Hook | None
    ) -> None:
        owner = self.owner
        if not owner._enter(ShutdownPhase.STOPPING):
            return
        await self._within(owner.timeout, stop())
        self.stopped = 0 if self.forced else 1
        if drain is not None and not self.forced and owner._enter(ShutdownPhase.DRAINING):
            self.drained = await self._drain(drain, checkpoint)
        if checkpoint is not None and owner._enter(ShutdownPhase.CHECKPOINTING):
            self.saved += await self._within(owner.checkpoint_timeout, checkpoint())
        if close is not None and not owner.is_forced:
            await _guarded("Closing", close(), self._left(_CLOSE_TIMEOUT))

    async def _drain(self, drain: Step, checkpoint: Step | None) -> int:
        interval = self.owner.checkpoint_interval
        periodic = None
        if checkpoint is not None and interval > 0:
            periodic = asyncio.create_task(self._checkpoint_every(interval, checkpoint))
        try:
            return await self._within(self.owner.drain_timeout, drain())
        finally:
            if periodic is not None:
                periodic.cancel()
                await asyncio.gather(periodic, return_exceptions=True)

    async def _checkpoint_every(self, interval: float, checkpoint: Step) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.saved += await checkpoint()
            except Exception:
                logger.warning("Checkpoint during drain failed", exc_info=True)

    def result(self) -> ShutdownResult:
        owner = self.owner
        reason = owner.reason
        if self.forced and reason != ShutdownReason.DOUBLE_SIGNAL:
            reason = ShutdownReason.TIMEOUT
        forced = self.forced or owner.is_forced
        return ShutdownResult(
            phase=owner.phase, duration_seconds=time.monotonic() - self.started,
            subscriptions_stopped=self.stopped, events_drained=self.drained,
            checkpoints_saved=self.saved, forced=forced, error=self.error, reason=reason,
            in_flight_at_start=owner._in_flight,
            events_not_drained=max(0, owner._in_flight - self.drained),
        )
