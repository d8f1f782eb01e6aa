"""`eventsource subscriptions list | status NAME`: checkpoints and how far behind they are.

Lag is measured against the store's commit-safe cursor, as the subscription reads: events
after the checkpoint (of every type, since a subscription moves past events it does not
handle), and the age of the oldest of them, i.e. how long it has waited to be handled.
A checkpoint stored under a tenant's key (`name@tenant:<uuid>`) is measured against that
tenant's events.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import click

from eventsource.cli._backend import Backend
from eventsource.cli._context import Settings
from eventsource.cli._errors import CheckFailedError, NotFoundError
from eventsource.cli._queries import event_position
from eventsource.cli._runner import runs_async
from eventsource.repositories._checkpoint import TENANT_MARK, CheckpointData
from eventsource.tenancy import tenant_scope
from eventsource.types import JSON

__all__ = ["group"]

_NEEDS = ("events", "checkpoints")
_COLUMNS = ["name", "position", "processed", "last processed", "lag events", "lag s", "state"]


@click.group("subscriptions")
def group() -> None:
    """Checkpoints of projections and subscriptions, and their lag."""


async def _cursor(db: Backend, data: CheckpointData) -> str | None:
    """Where the checkpoint stands, as a store cursor (None if it records no position)."""
    if data.cursor:
        return data.cursor
    position = data.global_position
    if position is None and data.last_event_id is not None:
        position = await event_position(db, data.last_event_id)
    return None if position is None else await db.store.cursor_for_position(position)


async def progress(db: Backend, data: CheckpointData) -> JSON:
    """A checkpoint with its lag in events and seconds, and a state word."""
    _, mark, owner = data.projection_name.partition(TENANT_MARK)
    with tenant_scope(UUID(owner)) if mark else nullcontext():
        cursor = await _cursor(db, data)
        lag_events: int | None = None
        lag_seconds: float | None = None
        if cursor is not None:
            lag_events = await db.store.committed_lag(cursor)
            lag_seconds = 0.0
            if lag_events:
                page = await db.store.read_committed(cursor, 1)
                if page.events:
                    waited = datetime.now(UTC) - page.events[0].stored_at
                    lag_seconds = max(0.0, waited.total_seconds())
    state = "unknown" if lag_events is None else "behind" if lag_events else "caught up"
    return {
        "name": data.projection_name,
        "position": data.global_position,
        "last_event_id": data.last_event_id,
        "last_event_type": data.last_event_type,
        "events_processed": data.events_processed,
        "last_processed_at": data.last_processed_at,
        "lag_events": lag_events,
        "lag_seconds": lag_seconds,
        "state": state,
    }


def _row(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["name"], item["position"], item["events_processed"], item["last_processed_at"],
        item["lag_events"], item["lag_seconds"], item["state"],
    )


@group.command("list")
@click.pass_obj
@runs_async
async def list_(settings: Settings) -> None:
    """Every checkpoint, with its lag."""
    async with settings.backend(needs=_NEEDS) as db:
        items = [await progress(db, data) for data in await db.checkpoints.get_all_checkpoints()]
    out = settings.out
    if out.json_mode:
        out.json({"subscriptions": items})
    elif items:
        out.table(None, _COLUMNS, [_row(item) for item in items])
    else:
        out.note("no checkpoints")


@group.command("status")
@click.argument("name")
@click.option("--max-lag-events", type=click.IntRange(0), help="Exit 1 if further behind.")
@click.option("--max-lag-seconds", type=click.FloatRange(0), help="Exit 1 if waited longer.")
@click.pass_obj
def status(
    settings: Settings, name: str, max_lag_events: int | None, max_lag_seconds: float | None
) -> None:
    """One checkpoint and its lag (exit 3 if unknown; 1 past a --max-lag-* limit)."""
    settings.run(_status(settings, name, max_lag_events, max_lag_seconds))


async def _status(
    settings: Settings, name: str, max_events: int | None, max_seconds: float | None
) -> None:
    async with settings.backend(needs=_NEEDS) as db:
        data = await db.checkpoints.get_checkpoint_data(name)
        if data is None:
            raise NotFoundError(
                f"no checkpoint named {name!r} in {db.url.shown} (`eventsource subscriptions "
                "list` shows them)"
            )
        item = await progress(db, data)
    out = settings.out
    if out.json_mode:
        out.json(item)
    else:
        out.table(None, _COLUMNS, [_row(item)])
    lag_events, lag_seconds = item["lag_events"], item["lag_seconds"]
    if max_events is not None and (lag_events is None or lag_events > max_events):
        raise CheckFailedError(f"{name} is {lag_events} events behind (limit {max_events})")
    if max_seconds is not None and (lag_seconds is None or lag_seconds > max_seconds):
        raise CheckFailedError(f"{name} lags {lag_seconds} s behind (limit {max_seconds} s)")
