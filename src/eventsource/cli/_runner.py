"""The one way the command line runs async code.

`run(coroutine)` runs it to completion on a new event loop. When the calling thread already
runs a loop (a notebook, an async test calling the CLI in-process), `asyncio.run` would fail
with "cannot be called from a running event loop"; the coroutine then runs on a new loop in
a worker thread instead, and the caller's thread waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["run", "runs_async"]

T = TypeVar("T")
P = ParamSpec("P")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result (or its exception), on a loop of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    return _run_in_thread(coroutine)


def _run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(coroutine))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=target, name="eventsource-cli", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


def runs_async(command: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """A Click callback written as a coroutine function: each call runs it to the end with
    `run`, so Click, which calls callbacks synchronously, gets a plain function."""

    @functools.wraps(command)
    def callback(*args: P.args, **kwargs: P.kwargs) -> None:
        run(command(*args, **kwargs))

    return callback
