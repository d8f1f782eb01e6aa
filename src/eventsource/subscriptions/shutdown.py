"""Graceful shutdown: phases, the result report and OS signal handling."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = ["ShutdownCoordinator", "ShutdownPhase", "ShutdownResult"]

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


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownCoordinator:
    """Turns SIGTERM/SIGINT into a shutdown request the manager can wait for."""

    def __init__(self) -> None:
        self._requested = asyncio.Event()
        self._installed: list[signal.Signals] = []
        self.reason: str | None = None

    @property
    def is_requested(self) -> bool:
        return self._requested.is_set()

    def request(self, reason: str = "requested") -> None:
        if not self._requested.is_set():
            self.reason = reason
            self._requested.set()

    def reset(self) -> None:
        self._requested.clear()
        self.reason = None

    async def wait(self) -> None:
        await self._requested.wait()

    def register_signals(self, on_signal: Callable[[str], None] | None = None) -> None:
        """Install handlers on the running loop (where the platform allows it)."""
        loop = asyncio.get_running_loop()
        callback = on_signal or self.request
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
