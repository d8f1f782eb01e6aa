"""A limit on events in flight, with backpressure statistics (0.2.0's `FlowController`).

The manager's reader hands a subscription's events over one at a time, in order, so it needs no
limit of its own; `FlowController` is for code that processes events concurrently, for example
a subscriber fanning work out to tasks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass

from eventsource._checks import at_least, within_unit
from eventsource._lifecycle import AsyncContext
from eventsource.types import JSON

__all__ = ["FlowControlContext", "FlowControlStats", "FlowController"]


@dataclass
class FlowControlStats:
    """In flight now, the most ever in flight, how often and how long the limit was reached,
    and slots taken and given back."""

    events_in_flight: int = 0
    peak_in_flight: int = 0
    pause_count: int = 0
    total_pause_time_seconds: float = 0.0
    total_acquisitions: int = 0
    total_releases: int = 0

    def to_dict(self) -> JSON:
        return asdict(self)


class FlowController:
    """At most `max_in_flight` slots held at once: `acquire()` waits for one to be free.

    `is_backpressured` once `backpressure_threshold` of the slots are held; `is_paused` while
    all are (each time the limit is reached counts a pause, and its length is added up).

        async with await controller.acquire():
            await work(event)
    """

    def __init__(self, max_in_flight: int = 1000, backpressure_threshold: float = 0.8) -> None:
        at_least("max_in_flight", max_in_flight, 1)
        within_unit("backpressure_threshold", backpressure_threshold)
        self.max_in_flight = max_in_flight
        self.backpressure_threshold = backpressure_threshold
        self._trigger = int(max_in_flight * backpressure_threshold)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight = 0
        self._paused_since: float | None = None
        self._stats = FlowControlStats()
        self._released = asyncio.Event()  # set (and replaced) at each release

    async def acquire(self) -> FlowControlContext:
        """Take a slot (waiting while none is free); the context gives it back on exit."""
        await self._slots.acquire()
        self._in_flight += 1
        stats = self._stats
        stats.total_acquisitions += 1
        stats.peak_in_flight = max(stats.peak_in_flight, self._in_flight)
        if self._in_flight >= self.max_in_flight and self._paused_since is None:
            self._paused_since = time.monotonic()
            stats.pause_count += 1
        return FlowControlContext(self)

    async def release(self) -> None:
        """Give a slot back (the context does it; call it yourself only after `acquire()`)."""
        if self._in_flight == 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_flight -= 1
        self._stats.total_releases += 1
        if self._paused_since is not None:
            self._stats.total_pause_time_seconds += time.monotonic() - self._paused_since
            self._paused_since = None
        self._slots.release()
        released, self._released = self._released, asyncio.Event()
        released.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def is_paused(self) -> bool:
        """Whether every slot is held."""
        return self._paused_since is not None

    @property
    def is_backpressured(self) -> bool:
        return self._in_flight >= self._trigger

    @property
    def available_capacity(self) -> int:
        return self.max_in_flight - self._in_flight

    @property
    def utilization(self) -> float:
        return self._in_flight / self.max_in_flight

    @property
    def stats(self) -> FlowControlStats:
        """A snapshot of the statistics."""
        return FlowControlStats(**{**asdict(self._stats), "events_in_flight": self._in_flight})

    def reset_stats(self) -> None:
        self._stats = FlowControlStats()

    async def wait_for_capacity(self, min_capacity: int = 1) -> None:
        """Wait until at least `min_capacity` slots are free (without taking them)."""
        if not 1 <= min_capacity <= self.max_in_flight:
            raise ValueError(
                f"min_capacity must be within [1, max_in_flight={self.max_in_flight}], "
                f"got {min_capacity}"
            )
        while self.available_capacity < min_capacity:
            await self._released.wait()


class FlowControlContext(AsyncContext):
    """A held slot: `async with` gives it back on exit, whatever happened inside."""

    def __init__(self, controller: FlowController) -> None:
        self._controller = controller

    async def _enter_context(self) -> None:
        """The slot is already held."""

    async def _exit_context(self) -> None:
        await self._controller.release()
