"""The synchronous API: the stores, repositories and subscriptions, for code without a loop.

Django and Flask views, CLI scripts, Jupyter cells and worker threads call the facades here
like ordinary functions; underneath, each call runs on the event loop of a `Portal`, one
daemon thread shared by every facade (`default_portal()` unless given one). The async objects
-- stores with their connections and pools -- are built on that loop by factories and used
only there, because asyncpg and aiosqlite connections belong to the loop that opened them.

    store = SyncEventStore.sqlite("app.db")
    repo = SyncAggregateRepository(store, Account, "Account")
    account = repo.load(account_id)
    account.deposit(10)
    repo.save(account)          # OptimisticLockError when the stream moved on, as in async

Safe from many threads at once, and from a thread whose own loop is running (a notebook, an
async framework: the call blocks that loop until it is done). A call from the portal's own
thread -- an async handler or a factory -- raises `PortalThreadError`. Everything is closed at
interpreter exit at the latest. See docs/sync.md.
"""

from eventsource.sync.exceptions import (
    PortalThreadError,
    SyncAPIError,
    SyncClosedError,
    SyncConfigurationError,
)
from eventsource.sync.portal import Portal, default_portal
from eventsource.sync.repository import SyncAggregateRepository
from eventsource.sync.snapshots import SyncSnapshotStore
from eventsource.sync.store import SyncEventStore
from eventsource.sync.subscriptions import SyncSubscriptionRunner

__all__ = [
    "Portal",
    "PortalThreadError",
    "SyncAPIError",
    "SyncAggregateRepository",
    "SyncClosedError",
    "SyncConfigurationError",
    "SyncEventStore",
    "SyncSnapshotStore",
    "SyncSubscriptionRunner",
    "default_portal",
]
