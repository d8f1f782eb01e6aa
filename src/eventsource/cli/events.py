"""`eventsource events tail | types`: the global log, live, and what types it holds.

`tail` reads through the store's commit-safe cursor (`read_committed`), as subscriptions do,
so `--follow` shows every committed event exactly once even while PostgreSQL writers commit
out of position order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import click

from eventsource.cli._context import Settings
from eventsource.cli._events import event_record
from eventsource.cli._evolution import STATUSES, resolve_stored
from eventsource.cli._queries import event_type_counts
from eventsource.cli._runner import runs_async
from eventsource.cli.streams import event_line

__all__ = ["group"]

_PAGE = 500
_WAIT = 1.0  # seconds between looks when no commit signal comes (SQLite written elsewhere)


@click.group("events")
def group() -> None:
    """The global log of events, and the event types stored."""


@group.command("tail")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option(
    "--type", "event_types", metavar="T", multiple=True,
    help="Only events of this type (repeatable).",
)
@click.option(
    "--from", "from_position", type=click.IntRange(0), metavar="POSITION",
    help="Start after this global position (0: the beginning).",
)
@click.option(
    "--last", default=10, show_default=True, type=click.IntRange(0),
    help="Without --from: start this many events before the end.",
)
@click.pass_obj
def tail(
    settings: Settings,
    follow: bool,
    event_types: tuple[str, ...],
    from_position: int | None,
    last: int,
) -> None:
    """Print the newest events (and, with --follow, new ones as they are committed)."""
    # Ctrl-C or SIGTERM is how a follow is meant to end: not a failure.
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        settings.run(_tail(settings, follow, frozenset(event_types), from_position, last))


async def _tail(
    settings: Settings,
    follow: bool,
    event_types: frozenset[str],
    from_position: int | None,
    last: int,
) -> None:
    _stop_on_sigterm()
    out = settings.out
    async with settings.backend() as db:
        store = db.store
        if from_position is None:
            from_position = max(0, await store.get_global_position() - last)
        cursor = await store.cursor_for_position(from_position)
        while True:
            page = await store.read_committed(cursor, _PAGE)
            cursor = page.cursor
            for stored in page.events:
                if event_types and stored.event_type not in event_types:
                    continue
                record = event_record(stored)
                if out.json_mode:
                    out.json_line(record)
                else:
                    out.line(event_line(record))
            if len(page.events) == _PAGE:
                continue
            if not follow:
                return
            await store.wait_for_new_events(_WAIT)


def _stop_on_sigterm() -> None:
    """SIGTERM ends a follow like Ctrl-C does: the loop's main task is cancelled."""
    task = asyncio.current_task()
    if task is None:
        return
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


@group.command("types")
@click.pass_obj
@runs_async
async def types(settings: Settings) -> None:
    """Count the stored events per type and version, and say what each reads as: the class
    and current version it resolves to (through old names and upcasters); flag types no
    class is registered for, versions no upcaster path brings to the current one, and
    versions newer than the code.

    Counts every event: a full scan of the events table.
    """
    app = await settings.app()
    async with settings.backend() as db:
        counts = await event_type_counts(db)
    rows = []
    for event_type, version, count in counts:
        resolved = resolve_stored(event_type, version, app.registry)
        rows.append({
            "event_type": event_type,
            "event_version": version,
            "count": count,
            "known": resolved["class"] is not None,
            **resolved,
            "flagged": resolved["status"] in _FLAGGED,
        })
    out = settings.out
    if out.json_mode:
        out.json({"types": rows})
        return
    out.table(
        None,
        ["event type", "version", "count", "class", "reads as", "note"],
        [
            (row["event_type"], row["event_version"], row["count"], row["class"] or "-",
             _reads_as(row), STATUSES[row["status"]])
            for row in rows
        ],
    )


_FLAGGED = frozenset({"unknown", "no_path", "newer"})


def _reads_as(row: dict[str, Any]) -> str:
    if row["split_into"] is not None:
        return " + ".join(row["split_into"])
    if row["current_type"] is None:
        return "-"
    return f"{row['current_type']} v{row['current_version']}"
