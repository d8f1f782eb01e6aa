"""The one place that turns a store URL into an open store and its repositories.

`sqlite:///path.db` (relative) or `sqlite:////abs/path.db`; `postgresql://user@host:port/db`
(also `postgres://`, `postgresql+asyncpg://`), where `?schema=NAME` sets the `search_path`.
Opening never creates anything unless asked (`create=True`: `db init`, `demo`): a missing
SQLite file is "not found", and the tables a command needs are checked before the library's
own components, which create missing tables on first use, are touched.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventsource.cli._errors import CliError, CliUsageError, NotFoundError
from eventsource.events.registry import EventRegistry
from eventsource.stores.interface import EventStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from eventsource.repositories._sql.checkpoint import SQLCheckpointRepository
    from eventsource.repositories._sql.dlq import SQLDLQRepository
    from eventsource.repositories._sql.outbox import SQLOutboxRepository
    from eventsource.snapshots._sql import SQLSnapshotStore

__all__ = ["Backend", "BackendName", "StoreURL", "parse_url"]

BackendName = Literal["sqlite", "postgresql"]
Row = Sequence[Any]
T = TypeVar("T")

_SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite")
_PG_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
_CONNECT_TIMEOUT = 10.0  # seconds: an unreachable server is reported, not waited on for a minute
_EXAMPLES = "use sqlite:///path.db or postgresql://user@host:5432/dbname"


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: the backend, what to connect to, and the URL safe to print."""

    backend: BackendName
    target: str  # the SQLite path, or the SQLAlchemy URL (asyncpg driver) without `schema`
    schema: str | None
    shown: str  # the password masked


def parse_url(url: str) -> StoreURL:
    """`CliUsageError` naming what is wrong with a malformed or unsupported URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise CliUsageError(f"store URL {_mask(url)!r} has no scheme: {_EXAMPLES}")
    scheme = scheme.lower()
    if scheme in _SQLITE_SCHEMES:
        return _sqlite_url(url, rest)
    if scheme in _PG_SCHEMES:
        return _postgresql_url(url)
    raise CliUsageError(f"store URL scheme {scheme!r} is not supported: {_EXAMPLES}")


def _sqlite_url(url: str, rest: str) -> StoreURL:
    host, slash, path = rest.partition("/")
    if host or not slash or not path:
        raise CliUsageError(
            f"SQLite URL {url!r} needs a file path after three slashes: sqlite:///events.db "
            "(relative) or sqlite:////var/data/events.db (absolute)"
        )
    if path == ":memory:" or path.startswith("file:"):
        raise CliUsageError(f"SQLite URL {url!r}: the command line needs a database file")
    return StoreURL("sqlite", path, None, url)


def _postgresql_url(url: str) -> StoreURL:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise CliUsageError(f"PostgreSQL URL {_mask(url)!r}: {exc}") from None
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    target = urlunsplit(
        ("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), parts.fragment)
    )
    return StoreURL("postgresql", target, schema, _mask(url))


def _mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _require_file(url: StoreURL) -> None:
    if not os.path.exists(url.target):
        raise NotFoundError(
            f"SQLite database {url.target!r} does not exist: create it with "
            f"`eventsource --url {url.shown} db init`"
        )


class _MadeOnFirstUse(Generic[T]):
    """A `Backend` attribute: the repository its name is the kind of, made by `Backend._make`
    on first read and kept in the instance from then on."""

    def __set_name__(self, owner: type[Backend], name: str) -> None:
        self.kind = name

    def __get__(self, backend: Backend, owner: type[Backend]) -> T:
        made: T = backend._make(self.kind)
        backend.__dict__[self.kind] = made  # found there on later reads, before this
        return made


class Backend:
    """An open store (given the browsing registry), its repositories and raw reads."""

    def __init__(self, url: StoreURL, store: EventStore, stack: AsyncExitStack) -> None:
        self.url = url
        self.kind: BackendName = url.backend
        self.store = store
        self._stack = stack
        self._engine: AsyncEngine | None = None

    @classmethod
    async def open(cls, url: StoreURL, registry: EventRegistry, *, create: bool) -> Backend:
        """Connect; the database must exist unless `create`, and must answer."""
        stack = AsyncExitStack()
        try:
            if url.backend == "sqlite":
                backend = await cls._open_sqlite(url, registry, stack, create)
            else:
                backend = await cls._open_postgresql(url, registry, stack)
            await backend.fetch("SELECT 1", {})  # reachable, and a database at all
        except BaseException:
            await stack.aclose()
            raise
        return backend

    @classmethod
    async def _open_sqlite(
        cls, url: StoreURL, registry: EventRegistry, stack: AsyncExitStack, create: bool
    ) -> Backend:
        from eventsource.stores.sqlite import SQLiteEventStore

        if not create:
            _require_file(url)
        # wal_mode=False leaves the file's journal mode as it is: looking must not change it.
        store = SQLiteEventStore(
            url.target, event_registry=registry, wal_mode=False, enable_tracing=False
        )
        await stack.enter_async_context(store)
        return cls(url, store, stack)

    @classmethod
    async def _open_postgresql(
        cls, url: StoreURL, registry: EventRegistry, stack: AsyncExitStack
    ) -> Backend:
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        from eventsource.stores.postgresql import PostgreSQLEventStore

        connect_args: dict[str, Any] = {"timeout": _CONNECT_TIMEOUT}
        if url.schema:
            connect_args["server_settings"] = {"search_path": url.schema}
        engine = create_async_engine(
            url.target, pool_size=2, max_overflow=2, connect_args=connect_args
        )
        stack.push_async_callback(engine.dispose)
        store = PostgreSQLEventStore(
            async_sessionmaker(engine, expire_on_commit=False),
            event_registry=registry,
            enable_tracing=False,
        )
        stack.push_async_callback(store.close)
        backend = cls(url, store, stack)
        backend._engine = engine
        return backend

    async def close(self) -> None:
        await self._stack.aclose()

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (PostgreSQL only)."""
        assert self._engine is not None, "PostgreSQL only"
        return self._engine

    # -- raw reads: statements from cli/_queries.py, `:name` placeholders --------------------

    async def fetch(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        """Run one read; a database that cannot be reached is one clear error."""
        try:
            if self.kind == "sqlite":
                return await self._fetch_sqlite(sql, params)
            return await self._fetch_postgresql(sql, params)
        except CliError:
            raise
        except Exception as exc:
            raise _unreachable(self.url, exc) from exc

    async def _fetch_sqlite(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        from eventsource.repositories.sqlite import _fetch, _params
        from eventsource.stores.sqlite import SQLiteEventStore

        assert isinstance(self.store, SQLiteEventStore)
        link = await self.store._open()
        return await link.read(_fetch, sql, _params(params))

    async def _fetch_postgresql(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            return list((await conn.execute(text(sql), dict(params))).all())

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text of top-level `key` of the JSON in `column`."""
        if self.kind == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"({column} ->> '{key}')"

    # -- the repositories, made on first use (after the tables were checked) -----------------

    def _make(self, kind: str) -> Any:
        """The backend's repository (or snapshot store) of `kind`, from `_REPOSITORIES`; on
        SQLite they share the store's connection (snapshots open the file themselves, and are
        closed with the backend)."""
        module, name = _REPOSITORIES[self.kind][kind].split(":")
        cls = getattr(importlib.import_module(module), name)
        if self.kind == "postgresql":
            made = cls(self.engine, False)
        else:
            made = cls(self.url.target if kind == "snapshots" else self.store, False)
        if kind == "snapshots":
            self._stack.push_async_callback(made.close)
        return made

    checkpoints: _MadeOnFirstUse[SQLCheckpointRepository] = _MadeOnFirstUse()
    dlq: _MadeOnFirstUse[SQLDLQRepository] = _MadeOnFirstUse()
    outbox: _MadeOnFirstUse[SQLOutboxRepository] = _MadeOnFirstUse()
    snapshots: _MadeOnFirstUse[SQLSnapshotStore] = _MadeOnFirstUse()


_REPOSITORIES = {
    "sqlite": {
        "checkpoints": "eventsource.repositories.sqlite:SQLiteCheckpointRepository",
        "dlq": "eventsource.repositories.sqlite:SQLiteDLQRepository",
        "outbox": "eventsource.repositories.sqlite:SQLiteOutboxRepository",
        "snapshots": "eventsource.snapshots.sqlite:SQLiteSnapshotStore",
    },
    "postgresql": {
        "checkpoints": "eventsource.repositories.postgresql:PostgreSQLCheckpointRepository",
        "dlq": "eventsource.repositories.postgresql:PostgreSQLDLQRepository",
        "outbox": "eventsource.repositories.postgresql:PostgreSQLOutboxRepository",
        "snapshots": "eventsource.snapshots.postgresql:PostgreSQLSnapshotStore",
    },
}


def _unreachable(url: StoreURL, exc: Exception) -> CliError:
    """The error for a database that does not answer (or does not exist)."""
    chain: list[BaseException] = [exc]
    while (inner := getattr(chain[-1], "orig", None) or chain[-1].__cause__) is not None:
        chain.append(inner)
        if len(chain) > 5:
            break
    cause = chain[-1]
    reason = " ".join(str(cause).split()) or type(cause).__name__
    if any(type(each).__name__ == "InvalidCatalogNameError" for each in chain):
        return NotFoundError(f"{url.shown}: {reason}")
    if any(isinstance(each, OSError | TimeoutError) for each in chain):
        return CliError(f"cannot reach the database at {url.shown}: {reason}")
    return CliError(f"cannot read the database at {url.shown}: {reason}")
