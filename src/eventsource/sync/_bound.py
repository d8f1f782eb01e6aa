"""What every facade is: an async object built on a portal's loop by a factory, used only there.

A facade never takes the async object itself, only a factory that builds it: asyncpg and
aiosqlite connections belong to the loop that opens them, so the object has to be made where it
will be used, on the portal's loop. The factory runs on first use (or at `open()`), once, in a
fresh context (a request's `tenant_scope` or span must not stick to shared infrastructure); in
a forked child it runs again, since the parent's object belongs to the parent.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeAlias, TypeVar

from eventsource._optional import optional
from eventsource.exceptions import PostgreSQLNotAvailableError
from eventsource.sync.exceptions import SyncClosedError, SyncConfigurationError
from eventsource.sync.portal import Portal, default_portal

if TYPE_CHECKING:
    from eventsource.stores.interface import EventStore

__all__ = [
    "Factory",
    "PortalBound",
    "backend_of",
    "close_if_closable",
    "construct",
    "postgresql_factory",
]

T = TypeVar("T")
R = TypeVar("R")

Factory: TypeAlias = Callable[[], T | Awaitable[T]]
"""Builds an async object (plain or async callable); run on the portal's loop."""
Build: TypeAlias = Callable[[], Coroutine[Any, Any, T]]
"""How a facade builds its object on the portal's loop (a factory, run and opened)."""
Release: TypeAlias = Callable[[T], Awaitable[None]]
"""How a facade closes or disposes of the object it built."""


class PortalBound(Generic[T]):
    """A facade over one async object of type `T` that lives on `portal`'s loop.

    `Facade(factory)` builds it with `factory` (and opens and closes it, see `construct`);
    subclasses with other arguments call `_setup` with their own build function.
    """

    kind: ClassVar[type[Any] | None] = None  # what a factory must return

    def __init__(self, factory: Factory[T], *, portal: Portal | None = None) -> None:
        name = type(self).__name__
        if not callable(factory):
            raise SyncConfigurationError(
                f"{name} takes a factory that builds the object on the portal's event loop, "
                f"not a {type(factory).__name__}: asyncpg and aiosqlite connections belong to "
                f"the loop that opened them. Write e.g. {name}(lambda: ...)"
            )
        what = f"{name}({getattr(factory, '__qualname__', type(factory).__name__)})"
        self._setup(lambda: construct(factory, self.kind, name), close_if_closable, portal, what)

    def _setup(
        self, build: Build[T], release: Release[T] | None, portal: Portal | None, what: str
    ) -> None:
        if portal is not None and not isinstance(portal, Portal):
            raise SyncConfigurationError(f"portal must be a Portal, got {type(portal).__name__}")
        self._portal = portal if portal is not None else default_portal()
        self._build = build
        self._release_target = release
        self._what = what
        self._target: T | None = None
        self._generation = -1
        self._lock: asyncio.Lock | None = None
        self._lock_generation = -1
        self._closed = False

    @classmethod
    def _over(
        cls, build: Build[T], release: Release[T] | None, portal: Portal | None, what: str
    ) -> Self:
        """A facade made from a build function (the classmethod constructors)."""
        facade = cls.__new__(cls)
        facade._setup(build, release, portal, what)
        return facade

    @classmethod
    def _made_by(cls, factory: Callable[[], T], portal: Portal | None, what: str) -> Self:
        """A facade over what a library factory makes (opened and closed as in `__init__`)."""
        return cls._over(
            lambda: construct(factory, cls.kind, what), close_if_closable, portal, what
        )

    @property
    def portal(self) -> Portal:
        """The portal whose loop runs this facade's calls."""
        return self._portal

    def run(self, operation: Callable[[T], Awaitable[R]]) -> R:
        """`await operation(obj)` on the portal, `obj` being the async object this facade
        wraps: for what the facade does not mirror. `operation` runs on the portal's loop, so
        it must await, never call the synchronous API."""
        return self._portal.call(self._apply, operation)

    async def _apply(self, operation: Callable[[T], Awaitable[R]]) -> R:
        target = self._target
        if target is None or self._generation != self._portal.generation:
            target = await self._resolve()
        return await operation(target)

    async def _resolve(self) -> T:
        """The async object, built on first use (one build however many calls wait for it)."""
        generation = self._portal.generation
        if self._lock is None or self._lock_generation != generation:
            self._lock, self._lock_generation = asyncio.Lock(), generation
        async with self._lock:
            if self._closed:
                raise SyncClosedError(f"{self._what} is closed")
            if self._target is None or self._generation != generation:
                if self._target is not None:  # built by the parent of this forked process
                    self._portal._abandon(self._target)
                    self._target = None
                target = await asyncio.get_running_loop().create_task(
                    self._build(), context=contextvars.Context()
                )
                self._target, self._generation = target, generation
                if self._closed:  # closed while it was being built: nobody may use it
                    await self._release()
                    raise SyncClosedError(f"{self._what} is closed")
                self._portal._add_closer(self, self._release)
                return target
            return self._target

    async def _release(self) -> None:
        target, self._target = self._target, None
        if target is not None and self._release_target is not None:
            await self._release_target(target)

    def open(self) -> Self:
        """Build the async object now, so that configuration errors (a wrong path or URL)
        surface here rather than at the first call. Optional: the first call does it too."""
        self._portal.call(self._resolve)
        return self

    def close(self) -> None:
        """Close what this facade built (idempotent); later calls raise `SyncClosedError`."""
        if self._closed or self._portal.closed:  # a closed portal closed it already
            self._closed = True
            return
        self._portal.call(self._close)

    async def _close(self) -> None:
        self._closed = True
        self._portal._remove_closer(self)
        await self._release()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return self._what


async def construct(factory: Factory[Any], kind: type[T] | None, what: str) -> T:
    """Run a factory (plain or async) and open what it made (`initialize()`, when it has one:
    a SQLite store connects and creates its tables there)."""
    made = factory()
    if inspect.isawaitable(made):
        made = await made
    if kind is not None and not isinstance(made, kind):
        raise SyncConfigurationError(
            f"The factory of {what} returned a {type(made).__name__}, which is not an "
            f"instance of {kind.__name__}"
        )
    initialize = getattr(made, "initialize", None)
    if callable(initialize):
        opened = initialize()
        if inspect.isawaitable(opened):
            await opened
    return made  # type: ignore[no-any-return]


async def close_if_closable(target: object) -> None:
    """Await `target.close()` if it has one (stores, snapshot stores)."""
    close = getattr(target, "close", None)
    if callable(close):
        closed = close()
        if inspect.isawaitable(closed):
            await closed


def backend_of(store: EventStore, what: str) -> str:
    """`"memory"`, `"sqlite"` or `"postgresql"`: which bundled store `store` is, so that
    `what` (snapshots, checkpoints) can be kept in the same database."""
    from eventsource.stores.in_memory import InMemoryEventStore
    from eventsource.stores.postgresql import PostgreSQLEventStore
    from eventsource.stores.sqlite import SQLiteEventStore

    if isinstance(store, InMemoryEventStore):
        return "memory"
    if isinstance(store, SQLiteEventStore):
        return "sqlite"
    if isinstance(store, PostgreSQLEventStore):
        return "postgresql"
    raise SyncConfigurationError(
        f"{type(store).__name__} is not a bundled store, so there is no default place for "
        f"{what} next to its events: pass a factory for them"
    )


def postgresql_factory(
    url: str, engine_options: Mapping[str, object] | None
) -> tuple[Build[Any], Release[Any]]:
    """How to build an `async_sessionmaker` over an engine of its own on the portal, and how
    to dispose of that engine. A `postgresql://` URL gets the asyncpg driver."""
    from eventsource._sql.postgresql import engine_of

    if optional("sqlalchemy.ext.asyncio") is None or optional("asyncpg") is None:
        raise PostgreSQLNotAvailableError
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]

    async def build() -> Any:
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        engine = create_async_engine(url, **(engine_options or {}))
        factory = async_sessionmaker(engine, expire_on_commit=False)
        engine_of(factory)  # a driver other than asyncpg: TypeError naming it
        return factory

    async def dispose(factory: Any) -> None:
        await engine_of(factory).dispose()

    return build, dispose
