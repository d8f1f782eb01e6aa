"""`Snapshot` and the `SnapshotStore` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsource.observability.attributes import (
    ATTR_AGGREGATE_ID,
    ATTR_AGGREGATE_TYPE,
    ATTR_DB_SYSTEM,
    ATTR_VERSION,
)
from eventsource.observability.tracing import trace_methods, traced

__all__ = ["Snapshot", "SnapshotStore"]



@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state at `version`, as a JSON-mode dict of its state model."""

    aggregate_id: UUID
    aggregate_type: str
    version: int
    state: dict[str, Any]
    schema_version: int
    created_at: datetime

    def __str__(self) -> str:
        return (
            f"Snapshot({self.aggregate_type}/{self.aggregate_id}, v{self.version}, "
            f"schema_v{self.schema_version})"
        )


def _db_system(store: object) -> str | None:
    """`db.system`: the store's own, else its module's name (`eventsource.snapshots.sqlite`)."""
    declared = getattr(store, "db_system", None)
    if isinstance(declared, str):
        return declared
    module = type(store).__module__
    return module.rpartition(".")[2] if module.startswith("eventsource.snapshots.") else None


def _span_attributes(
    store: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, object]:
    """Attributes of a snapshot span from `(snapshot)` or `(aggregate_id, aggregate_type)`."""
    found: dict[str, object] = {ATTR_DB_SYSTEM: _db_system(store)}
    snapshot = args[0] if args else kwargs.get("snapshot")
    if isinstance(snapshot, Snapshot):
        found[ATTR_AGGREGATE_ID] = snapshot.aggregate_id
        found[ATTR_AGGREGATE_TYPE] = snapshot.aggregate_type
        found[ATTR_VERSION] = snapshot.version
        return found
    found[ATTR_AGGREGATE_ID] = args[0] if args else kwargs.get("aggregate_id")
    found[ATTR_AGGREGATE_TYPE] = args[1] if len(args) > 1 else kwargs.get("aggregate_type")
    return found


_SPANS = {  # method -> its span
    method: traced(f"eventsource.snapshot.{kind}", attributes_of=_span_attributes, once=True)
    for method, kind in (
        ("save_snapshot", "save"),
        ("get_snapshot", "get"),
        ("delete_snapshot", "delete"),
        ("snapshot_exists", "exists"),
    )
}


class SnapshotStore(ABC):
    """At most one snapshot per `(aggregate_id, aggregate_type)`; saving replaces it.

    Tracing is built in: a subclass's `save_snapshot`, `get_snapshot`, `delete_snapshot` and
    `snapshot_exists` run in the `eventsource.snapshot.save` / `.get` / `.delete` / `.exists`
    spans (aggregate id and type, version, `db.system`) whenever the instance has a tracer
    (`TracingMixin._init_tracing`) and something records spans. Subclasses write no tracing
    code of their own.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        trace_methods(_SPANS)(cls)

    @abstractmethod
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Insert or replace the aggregate's snapshot."""

    @abstractmethod
    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        """The snapshot, or None."""

    @abstractmethod
    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        """True if a snapshot was deleted."""

    async def snapshot_exists(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return await self.get_snapshot(aggregate_id, aggregate_type) is not None

    async def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        """Delete every snapshot of a type (only older schema versions if given)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement this")


trace_methods(_SPANS)(SnapshotStore)  # its default `snapshot_exists` too
