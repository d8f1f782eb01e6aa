"""Commit signals between processes over PostgreSQL LISTEN/NOTIFY, for one event store.

Hearing. One dedicated connection per store LISTENs on the store's channel; every notification
calls `wake` (the store's sticky commit signal). The connection is made by the engine's pool and
then detached from it (`open_detached`): it honours the caller's URL, credentials and connect
args, yet occupies no slot of the caller's pool, which a connection parked in LISTEN forever
would otherwise starve. If the connection drops, `wake` fires once (a notification may have been
lost) and the next wait opens a new one. If it cannot be opened (a server or proxy without
LISTEN, such as PgBouncer in transaction mode), waits fall back to timeouts, retried now and then.

Telling. After an append commits, `notify()` sends `pg_notify` from a pooled connection, in a
transaction of its own with `synchronous_commit` off; the append returns once it is sent. Not
inside the append's transaction, on purpose: PostgreSQL serialises every committing transaction
that has sent a NOTIFY on one cluster-wide lock held through its WAL flush, so notifying inside
appends would make concurrent writers commit one at a time again (they lose
much of their throughput). Sends are coalesced (at most one in
flight; appends that commit meanwhile share the next), so concurrent writers send fewer
notifications than they append. An append waits for its notification on purpose: the NOTIFY
transaction takes a transaction id, and while in flight it holds back the commit-safe horizon,
so a caller reading right after its own append would now and then not see it yet. The cost: one
more round trip per append (shared among concurrent appends), and a writer that dies between
its commit and the notification wakes nobody; readers find its events at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from eventsource._sql.postgresql import DriverConnection
from eventsource._sql.postgresql_pool import DriverPool

__all__ = ["CommitChannel", "channel_name"]

logger = logging.getLogger("eventsource.stores.postgresql")

_RETRY_LISTEN_AFTER = 5.0
_CHECK_TIMEOUT = 5.0
_NOTIFY_SQL = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')"


def channel_name(schema: str, table: str = "events") -> str:
    """The channel of a table: schema-qualified, so stores of other schemas are not woken."""
    name = f"eventsource:{schema}.{table}"
    if len(name.encode()) <= 63:  # NAMEDATALEN - 1: PostgreSQL rejects longer channel names
        return name
    import hashlib

    return "eventsource:" + hashlib.sha1(name.encode()).hexdigest()


class CommitChannel:
    """The LISTEN connection and the coalesced NOTIFYs of one store (see the module docs)."""

    def __init__(self, pool: DriverPool, channel: str, wake: Callable[[], None]) -> None:
        self.channel = channel
        self._pool = pool
        self._wake = wake
        self._listener: DriverConnection | None = None
        self._failed_at: float | None = None
        self._opening: asyncio.Lock | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listening(self) -> bool:
        conn = self._listener
        return conn is not None and not conn.is_closed()

    # -- hearing ----------------------------------------------------------------------------

    async def listen(self) -> bool:
        """Make sure the LISTEN connection is up; False when LISTEN is unavailable (poll)."""
        if self.listening:
            return True
        if self._closed or (
            self._failed_at is not None
            and time.monotonic() - self._failed_at < _RETRY_LISTEN_AFTER
        ):
            return False
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            opened = self.listening or await self._open()
        if opened:
            # Commits made while nobody listened were not heard: wake readers once to re-read.
            self._wake()
        return opened

    async def _open(self) -> bool:
        try:
            conn = await self._pool.open_dedicated()
        except Exception as exc:
            return self._listen_failed(exc)
        try:
            await conn.add_listener(self.channel, self._heard)  # type: ignore[attr-defined]
            conn.add_termination_listener(self._dropped)  # type: ignore[attr-defined]
        except Exception as exc:
            self._pool.forget_dedicated(conn)
            conn.terminate()
            return self._listen_failed(exc)
        if self._closed:
            self._pool.forget_dedicated(conn)
            await conn.close(timeout=2)
            return False
        self._listener = conn
        self._failed_at = None
        return True

    def _listen_failed(self, exc: Exception) -> bool:
        if self._failed_at is None:
            logger.warning(
                "LISTEN on %s unavailable (%s: %s); waiting for new events falls back to polling",
                self.channel, type(exc).__name__, exc,
            )
        self._failed_at = time.monotonic()
        return False

    def _heard(self, *_args: Any) -> None:
        self._wake()

    def _dropped(self, *_args: Any) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            self._pool.forget_dedicated(conn)
        if not self._closed:
            logger.info("LISTEN connection on %s dropped; reconnecting at the next wait",
                        self.channel)
            self._wake()

    async def check(self) -> None:
        """Round-trip the LISTEN connection, dropping it if dead (a silent network failure)."""
        conn = self._listener
        if conn is None or conn.is_closed():
            return
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                await conn.execute("SELECT 1")
        except Exception:
            conn.terminate()
            self._dropped()

    # -- telling ----------------------------------------------------------------------------

    def notify(self) -> asyncio.Future[None]:
        """Tell other processes about a commit; the future is done once a NOTIFY sent after
        this call has committed (it never fails: without NOTIFY listeners poll)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed:
            done.set_result(None)
            return done
        self._waiting.append(done)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send())
        return done

    async def _send(self) -> None:
        try:
            while self._waiting and not self._closed:
                batch, self._waiting = self._waiting, []
                try:
                    await self._pool.run(
                        "notify", lambda conn: conn.execute(_NOTIFY_SQL, self.channel)
                    )
                except Exception as exc:
                    # Listeners fall back to their poll interval; the next append tries again.
                    logger.debug("NOTIFY on %s failed: %s", self.channel, exc)
                finally:
                    for done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._sender = None
            for done in self._waiting if self._closed else ():
                if not done.done():
                    done.set_result(None)

    # -- end --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening and close the LISTEN connection (idempotent)."""
        self._closed = True
        sender, self._sender = self._sender, None
        if sender is not None:
            _done, pending = await asyncio.wait({sender}, timeout=2)
            for task in pending:
                task.cancel()
        conn, self._listener = self._listener, None
        if conn is not None:
            self._pool.forget_dedicated(conn)
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
