"""Progress of a copy, an export or an import: counts, events per second and the time left,
reported through a callback at most once per interval (and once at the end)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressMeter", "TransferProgress"]


@dataclass(frozen=True)
class TransferProgress:
    """Where a transfer job stands.

    `events_read` counts source events done by the job (including those of an earlier run it
    resumed); `events_total` is how many the source held when this run started (its head
    position for a store; None for a file, whose length is unknown). `events_per_second` and
    `eta_seconds` are measured over this run only.
    """

    job: str
    events_read: int
    events_written: int
    events_total: int | None
    position: int
    elapsed_seconds: float
    read_this_run: int = 0
    finished: bool = False

    @property
    def events_per_second(self) -> float:
        """Source events handled per second by this run (0.0 before the first second)."""
        if self.elapsed_seconds <= 0:
            return 0.0
        return self.read_this_run / self.elapsed_seconds

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate (None when unknown; 0.0 when finished)."""
        if self.finished:
            return 0.0
        rate = self.events_per_second
        if self.events_total is None or rate <= 0:
            return None
        return max(0.0, (self.events_total - self.position) / rate)


ProgressCallback = Callable[[TransferProgress], Awaitable[None] | None]


class ProgressMeter:
    """Calls a `ProgressCallback` (sync or async) at most every `interval` seconds, and
    always for the final report."""

    def __init__(self, callback: ProgressCallback | None, interval: float) -> None:
        self._callback = callback
        self._interval = interval
        self._started = time.monotonic()
        self._last = float("-inf")

    def elapsed(self) -> float:
        """Seconds since the meter was made."""
        return time.monotonic() - self._started

    async def report(self, progress: TransferProgress, *, force: bool = False) -> None:
        """Hand `progress` to the callback if the interval has passed (or `force`)."""
        if self._callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        outcome = self._callback(progress)
        if inspect.isawaitable(outcome):
            await outcome
