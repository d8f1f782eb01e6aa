"""`eventsource snapshots list | invalidate --aggregate-type T`."""

from __future__ import annotations

import click

from eventsource.cli._context import Settings, yes_option
from eventsource.cli._queries import list_snapshots, snapshot_count
from eventsource.cli._runner import runs_async
from eventsource.cli.streams import parse_after

__all__ = ["group"]

_NEEDS = ("events", "snapshots")


@click.group("snapshots")
def group() -> None:
    """Aggregate snapshots."""


@group.command("list")
@click.option("--type", "aggregate_type", metavar="T", help="Only this aggregate type.")
@click.option("--after", metavar="STREAM_ID", help="Start after this stream (the `next` shown).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_obj
@runs_async
async def list_(
    settings: Settings, aggregate_type: str | None, after: str | None, limit: int
) -> None:
    """Snapshots in aggregate-id order, with how many events their stream has gained since."""
    start = parse_after(after)
    async with settings.backend(needs=_NEEDS) as db:
        rows = await list_snapshots(db, after=start, aggregate_type=aggregate_type, limit=limit)
    settings.out.keyset_page(
        "snapshots",
        rows,
        limit,
        ["stream", "version", "schema", "events since", "created"],
        lambda row: (
            row.stream_id, row.version, row.schema_version,
            max(0, row.stream_version - row.version), row.created_at,
        ),
    )


@group.command("invalidate")
@click.option("--aggregate-type", required=True, metavar="T", help="Delete this type's snapshots.")
@click.option(
    "--schema-below", type=click.IntRange(1), metavar="N",
    help="Only snapshots with a schema_version below N.",
)
@yes_option
@click.pass_obj
def invalidate(
    settings: Settings, aggregate_type: str, schema_below: int | None, yes: bool
) -> None:
    """Delete snapshots, so aggregates are rebuilt from their events (and snapshot anew)."""
    settings.run(_invalidate(settings, aggregate_type, schema_below, yes))


async def _invalidate(
    settings: Settings, aggregate_type: str, below: int | None, yes: bool
) -> None:
    out = settings.out
    async with settings.backend(needs=_NEEDS) as db:
        count = await snapshot_count(db, aggregate_type, below)
        deleted = 0
        if not count:
            out.note(f"no {aggregate_type} snapshots to delete")
        else:
            which = f" with schema_version < {below}" if below is not None else ""
            await settings.act(
                f"Will delete {count} {aggregate_type} snapshots{which}",
                yes=yes,
                read=lambda: snapshot_count(db, aggregate_type, below),
                shown=count,
            )
            deleted = await db.snapshots.delete_snapshots_by_type(aggregate_type, below)
            out.note(f"deleted {deleted} snapshots")
    if out.json_mode:
        out.json({"deleted": deleted})
