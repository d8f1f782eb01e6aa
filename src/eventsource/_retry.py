"""The one backoff policy and retry loop of the package (stdlib only, no drivers).

Projections, subscriptions, the outbox relay and every broker bus take their pauses from
`backoff_delay`; loops that retry an operation run it through `retry`; loops that reconnect
(and reset once connected) count their failures in a `Pauses`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Backoff", "Pauses", "backoff_delay", "retry"]

T = TypeVar("T")


def backoff_delay(
    attempt: int, initial: float, cap: float, base: float = 2.0, jitter: float = 0.0
) -> float:
    """Seconds to wait after 0-based failed attempt `attempt`: `initial * base**attempt`
    capped at `cap`, then spread by up to `jitter` of itself either way (so retries of many
    clients do not arrive in lockstep); never negative."""
    try:
        delay = min(initial * base**attempt, cap)
    except OverflowError:  # a huge attempt number: far past the cap
        delay = cap
    if jitter:
        delay += delay * jitter * random.uniform(-1.0, 1.0)
    return max(0.0, delay)


@dataclass(frozen=True)
class Backoff:
    """An exponential backoff: `initial` seconds, times `base` per failure, at most `cap`,
    spread by `jitter` (a fraction of the delay)."""

    initial: float
    cap: float
    base: float = 2.0
    jitter: float = 0.0

    def delay(self, attempt: int) -> float:
        """The pause after 0-based failed attempt `attempt`."""
        return backoff_delay(attempt, self.initial, self.cap, self.base, self.jitter)

    def after(self, failures: int) -> float:
        """The pause after `failures` failures in a row (1-based; 0 counts as 1)."""
        return self.delay(max(failures - 1, 0))


class Pauses:
    """The growing pause of a loop that reconnects: `next()` after each failure, `reset()`
    once it works again."""

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff
        self._failures = 0

    def next(self) -> float:
        """Count a failure; the pause before trying again."""
        self._failures += 1
        return self._backoff.after(self._failures)

    def reset(self) -> None:
        """It worked: the next failure starts from the initial pause again."""
        self._failures = 0


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...],
    on_retry: Callable[[int, BaseException, float], object] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Run `operation` up to `attempts` times (at least once). After a failure of a `retry_on`
    kind at 0-based attempt `n`, call `on_retry(n, error, pause)` and wait
    `backoff.delay(n)`; the last attempt's error (and any other) propagates."""
    for attempt in range(attempts - 1):
        try:
            return await operation()
        except retry_on as error:
            pause = backoff.delay(attempt)
            if on_retry is not None:
                on_retry(attempt, error, pause)
            await sleep(pause)
    return await operation()
