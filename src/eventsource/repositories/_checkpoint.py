"""Checkpoints: how far each projection or subscription has read.

Tenancy. `projection_checkpoints` is keyed by `projection_name` alone (a table
created beforehand with exactly the documented columns must keep working), so checkpoints are
scoped by key: inside `tenant_scope(t)` every method reads and writes the row named
`"<projection_name>@tenant:<t>"` (see `scoped_checkpoint_name`), and hands back the plain
`projection_name`; `get_all_checkpoints` returns only t's rows. Outside a scope names are used
as given, and `get_all_checkpoints` returns every row as stored (qualified names included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsource.observability.attributes import (
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_PROJECTION_NAME,
)
from eventsource.observability.tracing import TracingMixin, trace_methods, traced
from eventsource.tenancy import bound_tenant

__all__ = [
    "CheckpointData",
    "CheckpointRepository",
    "CheckpointRepositoryProtocol",
    "ConnectionCheckpointWriter",
    "InMemoryCheckpointRepository",
    "LagMetrics",
    "scoped_checkpoint_name",
]

TENANT_MARK = "@tenant:"


def scoped_checkpoint_name(projection_name: str, tenant: UUID | None) -> str:
    """The stored key of a checkpoint: the name itself, or `"<name>@tenant:<tenant>"`."""
    return projection_name if tenant is None else f"{projection_name}{TENANT_MARK}{tenant}"


def checked_count(count: int) -> int:
    """`save_position`'s `count` (events handled since the last save), refused if negative."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an int >= 0 (events handled), got {count!r}")
    return count


def tenant_suffix(tenant: UUID) -> str:
    """How every stored key of `tenant`'s checkpoints ends."""
    return f"{TENANT_MARK}{tenant}"


def unscoped(data: CheckpointData, tenant: UUID | None) -> CheckpointData:
    """A stored row as a scoped caller sees it: under its plain projection name."""
    if tenant is None:
        return data
    name = data.projection_name.removesuffix(tenant_suffix(tenant))
    return replace(data, projection_name=name)


@dataclass(frozen=True)
class CheckpointData:
    """One projection's checkpoint row. `cursor` is the store's commit-safe cursor, if any."""

    projection_name: str
    last_event_id: UUID | None = None
    last_event_type: str | None = None
    last_processed_at: datetime | None = None
    events_processed: int = 0
    global_position: int | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class LagMetrics:
    projection_name: str
    last_event_id: str | None = None
    latest_event_id: str | None = None
    lag_seconds: float = 0.0
    events_processed: int = 0
    last_processed_at: str | None = None


@runtime_checkable
class CheckpointRepository(Protocol):
    """Where checkpoints live. Callers pass `projection_name` by keyword."""

    async def get_checkpoint(self, projection_name: str) -> UUID | None: ...

    async def update_checkpoint(
        self, projection_name: str, event_id: UUID, event_type: str
    ) -> None: ...

    async def get_lag_metrics(
        self, projection_name: str, event_types: list[str] | None = None
    ) -> LagMetrics | None: ...

    async def reset_checkpoint(self, projection_name: str) -> None: ...

    async def get_position(self, subscription_id: str) -> int | None: ...

    async def save_position(
        self, subscription_id: str, position: int, event_id: UUID, event_type: str
    ) -> None: ...

    async def get_all_checkpoints(self) -> list[CheckpointData]: ...

    async def get_checkpoint_data(self, projection_name: str) -> CheckpointData | None: ...


CheckpointRepositoryProtocol = CheckpointRepository


@runtime_checkable
class ConnectionCheckpointWriter(Protocol):
    """A checkpoint repository that can write through the caller's connection, inside the
    caller's open transaction (so a read-model write and its checkpoint commit together)."""

    async def update_checkpoint_on(
        self,
        connection: Any,
        projection_name: str,
        event_id: UUID,
        event_type: str,
        count: int = 1,
        *,
        position: int | None = None,
        cursor: str | None = None,
    ) -> None:
        """`update_checkpoint` for `count` events (the last one given), on `connection`.

        With a `position`, also what `save_position` writes: the position and the store cursor
        to resume from (so a subscription restarts exactly after this transaction).
        """


_NAME = {"projection_name": ATTR_PROJECTION_NAME}
CHECKPOINT_SPANS = {  # every checkpoint repository's spans
    "get_checkpoint": traced("eventsource.checkpoint.get_checkpoint", arguments=_NAME, once=True),
    "update_checkpoint": traced(
        "eventsource.checkpoint.update_checkpoint",
        arguments={**_NAME, "event_id": ATTR_EVENT_ID, "event_type": ATTR_EVENT_TYPE},
        once=True,
    ),
    "reset_checkpoint": traced(
        "eventsource.checkpoint.reset_checkpoint", arguments=_NAME, once=True
    ),
}


@trace_methods(CHECKPOINT_SPANS)
class InMemoryCheckpointRepository(TracingMixin):
    """Checkpoints in a dict; lag is always 0.0. Share one instance to share checkpoints.

    Scoped by tenant as the module documentation says.
    """

    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing(__name__, enable_tracing)
        self._rows: dict[str, CheckpointData] = {}

    def _advance(
        self, name: str, event_id: UUID, event_type: str, count: int = 1, **changes: object
    ) -> None:
        row = self._rows.get(name) or CheckpointData(projection_name=name)
        self._rows[name] = replace(
            row,
            last_event_id=event_id,
            last_event_type=event_type,
            last_processed_at=datetime.now(UTC),
            events_processed=row.events_processed + count,
            **changes,  # type: ignore[arg-type]
        )

    async def get_checkpoint(self, projection_name: str) -> UUID | None:
        row = self._rows.get(scoped_checkpoint_name(projection_name, bound_tenant()))
        return row.last_event_id if row is not None else None

    async def update_checkpoint(
        self, projection_name: str, event_id: UUID, event_type: str
    ) -> None:
        self._advance(scoped_checkpoint_name(projection_name, bound_tenant()), event_id, event_type)

    async def get_lag_metrics(
        self, projection_name: str, event_types: list[str] | None = None
    ) -> LagMetrics | None:
        row = self._rows.get(scoped_checkpoint_name(projection_name, bound_tenant()))
        if row is None:
            return None
        return LagMetrics(
            projection_name=projection_name,
            last_event_id=str(row.last_event_id) if row.last_event_id else None,
            latest_event_id=None,
            lag_seconds=0.0,
            events_processed=row.events_processed,
            last_processed_at=row.last_processed_at.isoformat() if row.last_processed_at else None,
        )

    async def reset_checkpoint(self, projection_name: str) -> None:
        self._rows.pop(scoped_checkpoint_name(projection_name, bound_tenant()), None)

    async def get_position(self, subscription_id: str) -> int | None:
        row = self._rows.get(scoped_checkpoint_name(subscription_id, bound_tenant()))
        return row.global_position if row is not None else None

    async def save_position(
        self,
        subscription_id: str,
        position: int,
        event_id: UUID,
        event_type: str,
        cursor: str | None = None,
        count: int = 1,
    ) -> None:
        """Save the position (and cursor); `count`: the events handled since the last save."""
        key = scoped_checkpoint_name(subscription_id, bound_tenant())
        self._advance(
            key, event_id, event_type, checked_count(count), global_position=position,
            cursor=cursor,
        )

    async def get_cursor(self, subscription_id: str) -> str | None:
        """The commit-safe cursor saved with the position, if the store has one."""
        row = self._rows.get(scoped_checkpoint_name(subscription_id, bound_tenant()))
        return row.cursor if row is not None else None

    async def get_all_checkpoints(self) -> list[CheckpointData]:
        tenant = bound_tenant()
        if tenant is None:
            return [self._rows[name] for name in sorted(self._rows)]
        suffix = tenant_suffix(tenant)
        mine = [unscoped(row, tenant) for key, row in self._rows.items() if key.endswith(suffix)]
        return sorted(mine, key=lambda data: data.projection_name)

    async def get_checkpoint_data(self, projection_name: str) -> CheckpointData | None:
        tenant = bound_tenant()
        row = self._rows.get(scoped_checkpoint_name(projection_name, tenant))
        return unscoped(row, tenant) if row is not None else None

    async def clear(self) -> None:
        """Forget every checkpoint (inside a `tenant_scope`: the bound tenant's)."""
        tenant = bound_tenant()
        if tenant is None:
            self._rows.clear()
            return
        suffix = tenant_suffix(tenant)
        for key in [key for key in self._rows if key.endswith(suffix)]:
            del self._rows[key]
