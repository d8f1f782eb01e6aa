"""The portal: one event loop in a thread of its own, running the synchronous API's coroutines.

Why a loop thread, and only one. asyncpg and aiosqlite connections (and the pools and tasks
around them) belong to the loop that opened them. `asyncio.run` per call would open and close
that loop, with its connections, on every call, and cannot run where a loop already runs
(Jupyter, async frameworks); `run_until_complete` on the caller's loop fails there too. So every
async object a facade uses is built on the portal's loop by a factory and used only there, and
any thread -- with or without a loop of its own -- hands a coroutine function over and blocks
until it is done. A call made on the portal's own thread would wait for itself forever: it
raises `PortalThreadError` instead.

The hand-over costs two thread wake-ups and a Task. The caller queues the job with
`call_soon_threadsafe` and waits on a plain lock; on the loop the job runs the call as a Task
(never bare: `asyncio.timeout` and other code need a current task), whose done-callback releases
the lock. `run_coroutine_threadsafe`'s chained futures would add more (benchmarks/sync.py).
The caller's context variables (`tenant_scope`, the
current span) go with the call: the loop runs the job in a copy of the caller's context.

Shutdown. `close()` lets calls in flight finish (a few seconds), closes what the facades built
(newest first), cancels what is left and stops the thread. Portals left open are closed by an
`atexit` hook: it runs after the interpreter has waited for the program's own (non-daemon)
threads, so their last calls still go through; the portal's thread, and the driver threads it
starts (aiosqlite's), are daemons, so they are still there to be closed cleanly -- a SQLite
store left open checkpoints its WAL file away as if closed by hand.

Fork. A child process gets a fresh loop thread on its first call; facades then build their
objects anew there. The parent's connections are left alone (closing them from the child would
close them for the parent).
"""

from __future__ import annotations

import _thread
import asyncio
import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast

from eventsource._attributes import ReadOnly
from eventsource.sync.exceptions import PortalThreadError, SyncClosedError

__all__ = ["Portal", "default_portal"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_FINISH_GRACE = 5.0  # seconds calls in flight get to finish when a portal closes
_CLOSE_TIMEOUT = 10.0  # seconds the closers of what facades built get, each

_portals: weakref.WeakSet[Portal] = weakref.WeakSet()
_inherited: list[object] = []  # a forked child keeps the parent's objects alive, unused
_exit_hook: list[bool] = []
_exiting: list[bool] = []  # set once the interpreter exits: no loop thread may start after


class Portal:
    """An event loop in a daemon thread, started on first use; `call()` runs a coroutine
    function there from any other thread and returns its result or raises its exception (the
    same object, with its traceback).

    Facades use `default_portal()` unless given one. A portal is closed by `close()`, by
    leaving its `with` block, or at interpreter exit; a closed portal refuses calls with
    `SyncClosedError`.
    """

    def __init__(self, name: str = "eventsource-sync") -> None:
        self._name = name
        self._lock = threading.Lock()  # orders starting, queuing calls and closing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._closed = False
        self._closing = False
        self._generation = 0  # bumped in a forked child: what was built before is stale
        self._closers: dict[object, Callable[[], Awaitable[None]]] = {}
        self._jobs: set[asyncio.Task[Any]] = set()  # calls that suspended, until done
        _portals.add(self)

    name: ReadOnly[str] = ReadOnly("_name")
    """The portal's name (also its thread's)."""
    closed: ReadOnly[bool] = ReadOnly("_closed")
    """Whether the portal is closed (it then refuses calls)."""
    generation: ReadOnly[int] = ReadOnly("_generation")
    """Changes when a forked child starts using the portal: objects built on the loop of an
    earlier generation belong to the parent process."""

    def in_portal_thread(self) -> bool:
        """True when called on the portal's own loop thread (where sync calls are refused)."""
        return threading.get_ident() == self._thread_id

    def call(self, function: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `function(*args, **kwargs)` on the portal's loop and wait for its result.

        Exceptions keep their type and traceback; the caller's context variables are seen by
        the call. `PortalThreadError` on the portal's own thread, `SyncClosedError` once the
        portal is closed. Interrupting the wait (Ctrl-C) cancels the call.
        """
        if threading.get_ident() == self._thread_id:
            raise PortalThreadError(self._name)
        job: _Job[T] = _Job(self, function, args, kwargs)
        with self._lock:  # a call queued before close() began is run, never dropped
            loop = self._loop if self._loop is not None else self._start()
            loop.call_soon_threadsafe(job.start)
        return job.wait(loop)

    def _start(self) -> asyncio.AbstractEventLoop:
        """Start the loop thread (under the lock)."""
        if self._closed or _exiting:
            raise SyncClosedError(f"Portal {self._name!r} is closed")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._serve, args=(loop,), name=self._name, daemon=True)
        thread.start()
        self._loop, self._thread, self._thread_id = loop, thread, thread.ident
        _install_exit_hook()
        return loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        while True:
            try:
                loop.run_forever()
            except BaseException:  # KeyboardInterrupt/SystemExit escaping a Task's step
                logger.exception("Portal %r: the loop stopped on an error; restarting", self._name)
                continue
            return

    # -- what facades built -------------------------------------------------------------

    def _add_closer(self, owner: object, closer: Callable[[], Awaitable[None]]) -> None:
        """Close `owner`'s built objects when the portal closes (on the loop)."""
        self._closers[owner] = closer

    def _remove_closer(self, owner: object) -> None:
        self._closers.pop(owner, None)

    def _abandon(self, stale: object) -> None:
        """Keep an object built by the parent process alive and unused in a forked child:
        finalising it could close the parent's connections."""
        _inherited.append(stale)

    # -- closing --------------------------------------------------------------------------

    def close(self, timeout: float = _CLOSE_TIMEOUT) -> None:
        """Finish calls in flight, close what facades built, stop the thread (idempotent)."""
        if threading.get_ident() == self._thread_id:
            raise PortalThreadError(self._name)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = None
        if loop is None or thread is None:
            return
        finished = asyncio.run_coroutine_threadsafe(self._shut_down(timeout), loop)
        try:
            finished.result(_FINISH_GRACE + timeout * (len(self._closers) + 1))
        except Exception:
            logger.warning("Portal %r did not shut down cleanly", self._name, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("Portal %r: its thread did not stop within %ss", self._name, timeout)
            return
        loop.close()

    async def _shut_down(self, timeout: float) -> None:
        self._closing = True
        if self._jobs:
            await asyncio.wait(set(self._jobs), timeout=_FINISH_GRACE)
        for owner in reversed(list(self._closers)):  # dependants were built last
            closer = self._closers.pop(owner)
            try:
                await asyncio.wait_for(closer(), timeout)
            except Exception:
                logger.warning("Portal %r: closing %r failed", self._name, owner, exc_info=True)
        current = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._loop is not None else "idle"
        return f"Portal({self._name!r}, {state})"

    def _forget_parent(self) -> None:
        """In a forked child: the parent's loop thread does not exist here. Start afresh."""
        self._lock = threading.Lock()
        if self._loop is not None:
            self._abandon(self._loop)
        self._loop = self._thread = self._thread_id = None
        self._closers = {}
        self._jobs = set()
        self._closing = False
        self._generation += 1


class _Job(Generic[T]):
    """One call handed to the loop: started there, waited for by the caller on a lock."""

    __slots__ = ("_args", "_cancelled", "_done", "_error", "_function", "_kwargs", "_portal",
                 "_result", "_task")

    def __init__(
        self,
        portal: Portal,
        function: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._portal = portal
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._result: T | None = None
        self._error: BaseException | None = None
        self._task: asyncio.Task[T] | None = None
        self._cancelled = False

    def start(self) -> None:
        """On the loop, in a copy of the caller's context: run the call as a Task (which keeps
        that context). Always a Task: code under it may need one (`asyncio.timeout`,
        `current_task()`), as the PostgreSQL store's connection lending does."""
        if self._cancelled:
            self._done.release()
            return
        try:
            awaitable = self._function(*self._args, **self._kwargs)
        except BaseException as exc:
            self._error = exc
            self._done.release()
            return
        task = asyncio.get_running_loop().create_task(_finish(awaitable))
        self._task = task
        self._portal._jobs.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[T]) -> None:
        self._portal._jobs.discard(task)
        if task.cancelled():
            self._error = (
                SyncClosedError(f"Portal {self._portal.name!r} closed while the call ran")
                if self._portal._closing
                else asyncio.CancelledError()
            )
        else:
            error = task.exception()
            if error is None:
                self._result = task.result()
            else:
                self._error = error
        self._done.release()

    def cancel(self) -> None:
        """On the loop: the caller stopped waiting."""
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    def wait(self, loop: asyncio.AbstractEventLoop) -> T:
        try:
            self._done.acquire()
        except BaseException:  # interrupted (KeyboardInterrupt): nobody wants the result
            with contextlib.suppress(RuntimeError):  # a closed loop: nothing left to cancel
                loop.call_soon_threadsafe(self.cancel)
            raise
        error = self._error
        if error is not None:
            self._error = None  # no cycle through the traceback's frames
            try:
                raise error
            finally:
                del error
        return cast(T, self._result)


async def _finish(awaitable: Awaitable[T]) -> T:
    return await awaitable


_default: list[Portal] = []
_default_lock = threading.Lock()


def default_portal() -> Portal:
    """The process's shared portal, made on first use; after it was closed, facades made
    later get a new one (those made before keep the closed one and raise `SyncClosedError`)."""
    with _default_lock:
        if not _default or _default[0].closed:
            _default[:] = [Portal()]
        return _default[0]


def _close_all() -> None:
    _exiting.append(True)
    for portal in list(_portals):
        try:
            portal.close()
        except Exception:
            logger.warning("Closing %r at exit failed", portal, exc_info=True)


def _install_exit_hook() -> None:
    """Close every portal at interpreter exit (after the program's own threads ended)."""
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(_close_all)


def _after_fork_in_child() -> None:
    for portal in list(_portals):
        portal._forget_parent()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
