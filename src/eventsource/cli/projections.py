"""`eventsource projections rebuild NAME | reset NAME --to-start|--to POSITION`.

`rebuild` runs the projection from `--app` (a `CliApp` listing it) over every stored event
with the library's rebuild (`rebuild_projection`: its `reset()`, then an ordinary subscription
from the start, checkpointed in the store's checkpoint table), drawing a progress bar.
`reset` only moves the checkpoint: the projection reads from there when it next runs.
"""

from __future__ import annotations

from typing import Any, cast

import click

from eventsource.cli._backend import Backend
from eventsource.cli._context import Settings, yes_option
from eventsource.cli._errors import CliUsageError, NotFoundError
from eventsource.cli._progress import progress_bar
from eventsource.cli._runner import runs_async
from eventsource.repositories._checkpoint import CheckpointData

__all__ = ["group"]

_NEEDS = ("events", "checkpoints")


@click.group("projections")
def group() -> None:
    """Rebuild a projection, or move its checkpoint."""


async def _checkpoint(db: Backend, name: str) -> CheckpointData | None:
    return await db.checkpoints.get_checkpoint_data(name)


def _where(data: CheckpointData | None) -> str:
    if data is None:
        return "no checkpoint"
    return f"checkpoint at position {data.global_position}, {data.events_processed:,} handled"


@group.command("rebuild")
@click.argument("name")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@yes_option
@click.pass_obj
@runs_async
async def rebuild(settings: Settings, name: str, batch_size: int, yes: bool) -> None:
    """Reset projection NAME (from --app) and replay every event into it."""
    from eventsource.subscriptions.rebuild import RebuildProgress, rebuild_projection

    app = await settings.app()
    projection = app.projection_map().get(name)
    if projection is None:
        known = ", ".join(sorted(app.projection_map())) or "none"
        raise CliUsageError(
            f"projections rebuild needs the projection {name!r} from --app module:factory "
            f"(a CliApp(projections=[...]); it lists: {known})"
        )
    async with settings.backend(needs=_NEEDS) as db:
        shown = await _checkpoint(db, name)
        head = await db.store.get_global_position()
        await settings.act(
            f"Will reset {name} ({_where(shown)}; its reset() clears its read model) and "
            f"replay the {head:,} events of {db.url.shown} into it",
            yes=yes, read=lambda: _checkpoint(db, name), shown=shown,
        )
        with progress_bar(f"rebuild {name}", enabled=not settings.out.json_mode) as bar:

            def show(progress: RebuildProgress) -> None:
                seconds = progress.elapsed_seconds
                rate = progress.events_read / seconds if seconds > 0 else 0.0
                left = progress.events_total - progress.events_read
                bar.show(progress.events_read, progress.events_total, rate,
                         left / rate if rate > 0 else None)

            done = await rebuild_projection(
                projection, db.store, db.checkpoints, name=name, batch_size=batch_size,
                on_progress=show, progress_interval=0.1,
            )
    out = settings.out
    if out.json_mode:
        out.json({"name": name, "events_read": done.events_read,
                  "events_handled": done.events_handled,
                  "seconds": round(done.elapsed_seconds, 3)})
    out.note(f"rebuilt {name}: {done.events_read:,} events read, {done.events_handled:,} "
             f"handled in {done.elapsed_seconds:.1f} s")


@group.command("reset")
@click.argument("name")
@click.option("--to-start", is_flag=True, help="Forget the checkpoint: read from the start.")
@click.option("--to", "position", type=click.IntRange(1), metavar="POSITION",
              help="Read on after this global position (the event at it, or the last before).")
@yes_option
@click.pass_obj
def reset(settings: Settings, name: str, to_start: bool, position: int | None, yes: bool) -> None:
    """Move NAME's checkpoint to the start or to a position (exit 3 if it has none)."""
    if to_start == (position is not None):
        raise CliUsageError("projections reset needs --to-start or --to POSITION (not both)")
    settings.run(_reset(settings, name, position, yes))


async def _reset(settings: Settings, name: str, position: int | None, yes: bool) -> None:
    async with settings.backend(needs=_NEEDS) as db:
        shown: CheckpointData | None = await _checkpoint(db, name)
        if shown is None:
            raise NotFoundError(
                f"no checkpoint named {name!r} in {db.url.shown} (`eventsource subscriptions "
                "list` shows them)"
            )
        event: Any = None
        if position is not None:
            head = await db.store.get_global_position()
            if position > head:
                raise NotFoundError(
                    f"position {position} is past the last event of {db.url.shown} ({head})"
                )
            event = await _at_or_before(db, position)
        where = "the start" if event is None else (
            f"position {event.global_position} ({event.event_type} {event.event_id})"
        )
        await settings.act(
            f"Will move {name}'s checkpoint ({_where(shown)}) to {where}", yes=yes,
            read=lambda: _checkpoint(db, name), shown=cast("CheckpointData | None", shown),
        )
        if event is None:
            await db.checkpoints.reset_checkpoint(name)
        else:
            cursor = await db.store.cursor_for_position(event.global_position)
            await db.checkpoints.save_position(
                name, event.global_position, event.event_id, event.event_type, cursor, count=0
            )
    settings.out.note(f"{name} now reads on after {where}")
    if settings.out.json_mode:
        settings.out.json({"name": name, "position": 0 if event is None else event.global_position})


async def _at_or_before(db: Backend, position: int) -> Any:
    """The stored event at `position`, or the last one before it (positions may have gaps:
    PostgreSQL's are not reused after a rollback); None when there is none."""
    from eventsource.stores.records import ReadOptions

    upper = position
    while upper > 0:
        lower = max(0, upper - 1000)
        page = await db.store.read_all(ReadOptions(from_position=lower, limit=upper - lower))
        found = [stored for stored in page.events if stored.global_position <= position]
        if found:
            return found[-1]
        upper = lower
    return None
