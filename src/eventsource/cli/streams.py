"""`eventsource streams list | show`: the streams of a store, and one stream's events."""

from __future__ import annotations

import json
from uuid import UUID

import click

from eventsource.cli._context import Settings
from eventsource.cli._errors import CliUsageError, NotFoundError
from eventsource.cli._events import event_record
from eventsource.cli._queries import id_range, list_streams, stream_states, table_columns
from eventsource.cli._runner import runs_async
from eventsource.retention import reading
from eventsource.stores.interface import ReadOptions
from eventsource.types import JSON

__all__ = ["event_line", "group", "parse_after", "parse_stream_id"]

_MAX_LIMIT = 1000


@click.group("streams")
def group() -> None:
    """List streams and show their events."""


def parse_stream_id(text: str, option: str) -> tuple[UUID, str | None]:
    """`<uuid>:<aggregate type>` or a bare `<uuid>` (every type); `CliUsageError` otherwise."""
    head, _, aggregate_type = text.partition(":")
    try:
        aggregate_id = UUID(head)
    except ValueError:
        raise CliUsageError(
            f"{option} {text!r} is not a stream id: use <aggregate uuid>:<aggregate type> "
            "or a bare aggregate uuid"
        ) from None
    return aggregate_id, aggregate_type or None


def parse_after(after: str | None) -> tuple[UUID, str] | None:
    """`--after STREAM_ID` as the keyset it continues from (a bare uuid: before its types)."""
    if after is None:
        return None
    after_id, after_type = parse_stream_id(after, "--after")
    return after_id, after_type or ""


@group.command("list")
@click.option("--type", "aggregate_type", metavar="T", help="Only streams of this aggregate type.")
@click.option("--prefix", metavar="HEX", help="Only aggregate ids starting with these hex digits.")
@click.option(
    "--after", metavar="STREAM_ID", help="Start after this stream (the `next` of the last page)."
)
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, _MAX_LIMIT),
    help="Streams per page.",
)
@click.pass_obj
@runs_async
async def list_(
    settings: Settings,
    aggregate_type: str | None,
    prefix: str | None,
    after: str | None,
    limit: int,
) -> None:
    """List streams in aggregate-id order, one page at a time (keyset paging)."""
    ids = id_range(prefix) if prefix is not None else None
    start = parse_after(after)
    async with settings.backend() as db:
        rows = await list_streams(
            db, after=start, aggregate_type=aggregate_type, ids=ids, limit=limit
        )
    settings.out.keyset_page(
        "streams",
        rows,
        limit,
        ["stream", "version", "last event", "last position", "last stored"],
        lambda row: (
            row.stream_id, row.version, row.last_event_type, row.last_position,
            row.last_stored_at,
        ),
    )


@group.command("show")
@click.argument("stream_id")
@click.option(
    "--from-version", default=0, show_default=True, type=click.IntRange(0),
    help="Only events after this stream version.",
)
@click.option("--limit", type=click.IntRange(1), help="At most this many events.")
@click.pass_obj
@runs_async
async def show(settings: Settings, stream_id: str, from_version: int, limit: int | None) -> None:
    """Show a stream's events (STREAM_ID is <uuid>:<type>, or a bare uuid for every type).

    Exits 3 if the stream has no events.
    """
    aggregate_id, aggregate_type = parse_stream_id(stream_id, "STREAM_ID")
    key = f"{aggregate_id}:{aggregate_type}" if aggregate_type else str(aggregate_id)
    async with settings.backend() as db:
        options = ReadOptions(from_position=from_version, limit=limit)
        with reading(include_archived=True):  # an operator sees archived streams' events
            events = [event_record(stored) async for stored in db.store.read_stream(key, options)]
        retention = []
        if "stream_metadata" in await table_columns(db, ["stream_metadata"]):
            retention = await stream_states(db, aggregate_id, aggregate_type)
        if not events and not retention and (
            from_version == 0 or not await db.store.read_stream(key, ReadOptions(limit=1))
        ):
            raise NotFoundError(f"stream {key} not found: it has no events in {db.url.shown}")
    out = settings.out
    if out.json_mode:
        out.json({"stream_id": key, "from_version": from_version, "events": events,
                  "retention": retention})
        return
    for state in retention:
        out.note(_retention_line(state))
    for record in events:
        out.line(event_line(record))


def _retention_line(state: dict[str, object]) -> str:
    """A stream's retention row, as `streams show` notes it (on stderr)."""
    parts = [f"retention ({state['aggregate_type']}): {state['state']}"]
    if state["max_age_seconds"] is not None:
        parts.append(f"max age {state['max_age_seconds']} s")
    if state["max_count"] is not None:
        parts.append(f"keeps the newest {state['max_count']}")
    if state["truncate_before"]:
        parts.append(f"truncated before v{state['truncate_before']}")
    if state["state"] in ("soft_deleted", "tombstoned"):
        parts.append("its events are hidden from reads")
    return "; ".join(parts)


def event_line(record: JSON) -> str:
    """One event on one line: position, time, stream and version, type, payload."""
    unknown = "" if record["known"] else " (unknown type)"
    data = json.dumps(record["data"], ensure_ascii=False, separators=(",", ":"))
    return (
        f"#{record['global_position']}  {record['occurred_at']}  {record['stream_id']} "
        f"v{record['stream_position']}  {record['event_type']}{unknown}  {data}"
    )
