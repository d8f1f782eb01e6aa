"""`SyncSnapshotStore`: a snapshot store for synchronous code, run on a portal's event loop."""

from __future__ import annotations

import os
from collections.abc import Mapping
from uuid import UUID

from eventsource.snapshots.interface import Snapshot, SnapshotStore
from eventsource.sync._bound import PortalBound, backend_of, close_if_closable, postgresql_factory
from eventsource.sync.exceptions import SyncConfigurationError
from eventsource.sync.portal import Portal
from eventsource.sync.store import SyncEventStore

__all__ = ["SyncSnapshotStore"]


class SyncSnapshotStore(PortalBound[SnapshotStore]):
    """The `SnapshotStore` API as blocking calls, usable from any thread.

    `SyncSnapshotStore.beside(store)` keeps snapshots in the event store's own database (the
    same SQLite file, the same PostgreSQL engine, or in memory); `.sqlite(path)`,
    `.postgresql(url)`, `.in_memory()` or `SyncSnapshotStore(factory)` choose another.
    """

    kind = SnapshotStore

    @classmethod
    def in_memory(cls, *, portal: Portal | None = None) -> SyncSnapshotStore:
        from eventsource.snapshots.in_memory import InMemorySnapshotStore

        return cls._made_by(InMemorySnapshotStore, portal, "SyncSnapshotStore.in_memory()")

    @classmethod
    def sqlite(
        cls, database_path: str | os.PathLike[str], *, portal: Portal | None = None
    ) -> SyncSnapshotStore:
        """A `SQLiteSnapshotStore` (its table is created on first use)."""
        from eventsource.snapshots.sqlite import SQLiteSnapshotStore

        path = os.fspath(database_path)
        return cls._made_by(
            lambda: SQLiteSnapshotStore(path), portal, f"SyncSnapshotStore.sqlite({path!r})"
        )

    @classmethod
    def postgresql(
        cls,
        url: str,
        *,
        engine_options: Mapping[str, object] | None = None,
        portal: Portal | None = None,
    ) -> SyncSnapshotStore:
        """A `PostgreSQLSnapshotStore` over an engine of its own (see
        `SyncEventStore.postgresql`); `beside(store)` shares the store's engine instead."""
        from eventsource.snapshots.postgresql import PostgreSQLSnapshotStore

        sessions, dispose = postgresql_factory(url, engine_options)

        async def build() -> SnapshotStore:
            return PostgreSQLSnapshotStore(await sessions())

        async def release(store: SnapshotStore) -> None:
            assert isinstance(store, PostgreSQLSnapshotStore)
            await dispose(store.session_factory)

        return cls._over(build, release, portal, "SyncSnapshotStore.postgresql(...)")

    @classmethod
    def beside(cls, store: SyncEventStore) -> SyncSnapshotStore:
        """Snapshots in the database of `store`, on its portal: `snapshots` table of the same
        SQLite file or PostgreSQL engine, or an `InMemorySnapshotStore` for an in-memory
        store. `SyncConfigurationError` (at first use) for a store of your own."""
        if not isinstance(store, SyncEventStore):
            raise SyncConfigurationError(
                f"SyncSnapshotStore.beside() needs a SyncEventStore, got {type(store).__name__}"
            )

        async def build() -> SnapshotStore:
            events = await store._resolve()
            backend = backend_of(events, "snapshots")
            if backend == "sqlite":
                from eventsource.snapshots.sqlite import SQLiteSnapshotStore
                from eventsource.stores.sqlite import SQLiteEventStore

                assert isinstance(events, SQLiteEventStore)
                return SQLiteSnapshotStore(events.database)
            if backend == "postgresql":
                from eventsource.snapshots.postgresql import PostgreSQLSnapshotStore
                from eventsource.stores.postgresql import PostgreSQLEventStore

                assert isinstance(events, PostgreSQLEventStore)
                return PostgreSQLSnapshotStore(events.session_factory)
            from eventsource.snapshots.in_memory import InMemorySnapshotStore

            return InMemorySnapshotStore()

        what = f"SyncSnapshotStore.beside({store!r})"
        return cls._over(build, close_if_closable, store.portal, what)

    # -- the SnapshotStore API -------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Insert or replace the aggregate's snapshot."""
        self.run(lambda store: store.save_snapshot(snapshot))

    def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        return self.run(lambda store: store.get_snapshot(aggregate_id, aggregate_type))

    def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return self.run(lambda store: store.delete_snapshot(aggregate_id, aggregate_type))

    def snapshot_exists(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return self.run(lambda store: store.snapshot_exists(aggregate_id, aggregate_type))

    def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        return self.run(
            lambda store: store.delete_snapshots_by_type(aggregate_type, schema_version_below)
        )
