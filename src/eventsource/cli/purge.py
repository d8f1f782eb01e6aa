"""`eventsource purge`: run the retention purge job once (see docs/retention.md)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import click

from eventsource.cli._context import Settings, yes_option

__all__ = ["command"]


@click.command("purge")
@click.option(
    "--guarded", "guarded", multiple=True, metavar="NAME",
    help="A subscription (checkpoint name) whose unread events are kept; repeatable.",
)
@click.option(
    "--max-delay", type=click.FloatRange(0), metavar="SECONDS",
    help="Delete guarded events anyway once stored this long ago (logs an error).",
)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1))
@yes_option
@click.pass_obj
def command(
    settings: Settings, guarded: tuple[str, ...], max_delay: float | None, batch_size: int,
    yes: bool,
) -> None:
    """Delete the events retention rules hide, tombstoned streams, unusable snapshots and
    published outbox rows, in batches."""
    settings.run(_purge(settings, guarded, max_delay, batch_size, yes))


async def _purge(
    settings: Settings, guarded: tuple[str, ...], max_delay: float | None, batch_size: int,
    yes: bool,
) -> None:
    from eventsource.retention import PurgeJob

    out = settings.out
    async with settings.backend(needs=("events", "checkpoints") if guarded else ("events",)) as db:
        job = PurgeJob(
            db.store, checkpoints=db.checkpoints if guarded else None, guarded=guarded,
            max_delay=None if max_delay is None else timedelta(seconds=max_delay),
            batch_size=batch_size,
        )
        kept = f", keeping what {', '.join(guarded)} have not read" if guarded else ""
        out.confirm(f"Will delete what retention hides{kept}", yes=yes)
        report = await job.run()
    if out.json_mode:
        out.json(asdict(report))
    else:
        out.note(
            f"deleted {report.events} events ({report.overdue} overdue), {report.snapshots} "
            f"snapshots, {report.outbox} outbox rows; {report.streams} streams with rules"
        )
