"""The global options, and what every command gets from them: output, the app, the store.

Commands are coroutine functions made Click callbacks by `runs_async` (or synchronous
callbacks that convert their arguments, then hand one coroutine to `Settings.run`); inside,
`async with settings.backend(needs=...)` opens the store (checking the tables the command
reads exist, and the `--tenant`), binds the tenant, and closes everything after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import click

from eventsource.cli._app import CliApp, load_app
from eventsource.cli._backend import Backend, StoreURL, parse_url
from eventsource.cli._errors import CliUsageError, ConflictError, NotFoundError
from eventsource.cli._output import Output
from eventsource.cli._runner import run
from eventsource.tenancy import tenant_scope

__all__ = ["Settings", "yes_option"]

T = TypeVar("T")

# The flag of every command that asks before it changes data (`Output.confirm`).
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")

# The table each kind of data lives in, and what to tell an operator whose database lacks it.
_TABLES = {
    "events": "events",
    "checkpoints": "projection_checkpoints",
    "dlq": "dead_letter_queue",
    "outbox": "event_outbox",
    "snapshots": "snapshots",
    "retention": "stream_metadata",
}


@dataclass
class Settings:
    """The global options, as given."""

    url: str | None
    app_spec: str | None
    tenant: str | None
    json: bool
    debug: bool
    _app: CliApp | None = field(default=None, init=False, repr=False)

    @property
    def out(self) -> Output:
        return Output(self.json)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return run(coroutine)

    def store_url(self) -> StoreURL:
        if not self.url:
            raise CliUsageError(
                "no store given: pass --url (or set EVENTSOURCE_URL), e.g. "
                "--url sqlite:///events.db or --url postgresql://user@host/dbname"
            )
        return parse_url(self.url)

    def tenant_id(self) -> UUID | None:
        if self.tenant is None:
            return None
        try:
            return UUID(self.tenant)
        except ValueError:
            raise CliUsageError(f"--tenant {self.tenant!r} is not a UUID") from None

    async def app(self) -> CliApp:
        """The `--app` (imported once)."""
        if self._app is None:
            self._app = await load_app(self.app_spec)
        return self._app

    @asynccontextmanager
    async def backend(
        self, *, needs: tuple[str, ...] = ("events",), create: bool = False
    ) -> AsyncIterator[Backend]:
        """The open store, inside the `--tenant` scope; `needs` are kinds of data from
        `_TABLES` the command reads."""
        from eventsource.cli._events import BrowsingRegistry
        from eventsource.cli._queries import table_columns, tenant_has_events

        url, tenant = self.store_url(), self.tenant_id()
        app = await self.app()
        db = await Backend.open(url, BrowsingRegistry(app.registry), create=create)
        try:
            tables = [_TABLES[kind] for kind in needs]
            present = await table_columns(db, tables) if tables else {}
            for kind, table in zip(needs, tables, strict=True):
                if table not in present:
                    raise NotFoundError(_missing_table(url, kind, table))
            if tenant is not None and not await tenant_has_events(db, tenant):
                raise NotFoundError(
                    f"tenant {tenant} has no events in {url.shown}: check the --tenant id"
                )
            with tenant_scope(tenant) if tenant is not None else nullcontext():
                yield db
        finally:
            await db.close()

    async def act(
        self,
        plan: str,
        *,
        yes: bool,
        read: Callable[[], Awaitable[T]],
        shown: T,
    ) -> None:
        """Confirm `plan`, then re-read the state it was made from (`read`): if it is no
        longer what was `shown`, nothing is done (`ConflictError`)."""
        self.out.confirm(plan, yes=yes)
        now = await read()
        if now != shown:
            raise ConflictError(
                "the state changed since it was shown; nothing was changed: run the command "
                "again to see the new state"
            )


def _missing_table(url: StoreURL, kind: str, table: str) -> str:
    if kind == "outbox":
        return (
            f"{url.shown} has no {table} table: the outbox is not in use there (see "
            "docs/outbox.md; `eventsource db init` creates every table)"
        )
    return (
        f"{url.shown} has no {table} table: create the tables with "
        f"`eventsource --url {url.shown} db init`"
    )
