"""The web app's state: the open store, which optional tables exist, and its safety settings.

`create_app(url)` opens the store in the app's lifespan, through the command line's
`Settings.backend` (so a bad URL, missing tables or an unknown tenant fail the same way, with
the same one-line messages), on the server's own event loop. `create_app(store)` wraps a store
the caller opened (and closes): SQLite or PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from uuid import UUID

from eventsource.cli._app import CliApp
from eventsource.cli._backend import Backend, StoreURL
from eventsource.cli._context import _TABLES, Settings
from eventsource.cli._errors import CliUsageError
from eventsource.cli._queries import table_columns
from eventsource.stores.interface import EventStore
from eventsource.tenancy import tenant_scope

__all__ = ["WebState", "open_state"]


@dataclass
class WebState:
    """Everything a request handler needs."""

    db: Backend
    tables: frozenset[str]
    app: CliApp
    allow_writes: bool
    tenant: UUID | None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def scope(self) -> AbstractContextManager[object]:
        """The request's tenant scope (`--tenant`), or nothing."""
        return tenant_scope(self.tenant) if self.tenant is not None else nullcontext()

    def csrf_token(self, nonce: str) -> str:
        """The form token that goes with the browser's CSRF cookie `nonce`."""
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce), token)


def _tenant(tenant: UUID | str | None) -> UUID | None:
    if tenant is None or isinstance(tenant, UUID):
        return tenant
    try:
        return UUID(tenant)
    except ValueError:
        raise CliUsageError(f"tenant {tenant!r} is not a UUID") from None


def _wrap(store: EventStore) -> Backend:
    """A `Backend` over a store the caller owns (not closed with the app)."""
    from eventsource.stores.sqlite import SQLiteEventStore

    if isinstance(store, SQLiteEventStore):
        path = store.database
        return Backend(StoreURL("sqlite", path, None, f"sqlite:///{path}"), store, AsyncExitStack())
    from eventsource._sql.postgresql import engine_of
    from eventsource.stores.postgresql import PostgreSQLEventStore

    if not isinstance(store, PostgreSQLEventStore):
        raise CliUsageError(
            f"the web app reads SQLite and PostgreSQL stores, not a {type(store).__name__}"
        )
    engine = engine_of(store.session_factory)
    shown = engine.url.render_as_string(hide_password=True)
    backend = Backend(StoreURL("postgresql", shown, None, shown), store, AsyncExitStack())
    backend._engine = engine
    return backend


@asynccontextmanager
async def open_state(
    store: EventStore | str, app: CliApp, allow_writes: bool, tenant: UUID | str | None
) -> AsyncIterator[WebState]:
    """The state for the app's lifetime: the store opened (from a URL) or wrapped."""
    tenant_id = _tenant(tenant)
    async with AsyncExitStack() as stack:
        if isinstance(store, str):
            settings = Settings(store, None, None if tenant_id is None else str(tenant_id),
                                json=False, debug=False)
            settings._app = app
            db = await stack.enter_async_context(settings.backend())
        else:  # closes what the app made (the snapshot store), not the caller's store
            db = _wrap(store)
            stack.push_async_callback(db.close)
        kinds = {kind: table for kind, table in _TABLES.items() if kind != "events"}
        present = await table_columns(db, list(kinds.values()))
        tables = frozenset(kind for kind, table in kinds.items() if table in present)
        yield WebState(db, tables, app, allow_writes, tenant_id)
