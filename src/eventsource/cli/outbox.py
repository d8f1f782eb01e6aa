"""`eventsource outbox status | retry-failed`: the transactional outbox's backlog."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import click

from eventsource.cli._context import Settings, yes_option
from eventsource.cli._errors import CliUsageError
from eventsource.cli._runner import runs_async

__all__ = ["group"]

_NEEDS = ("events", "outbox")


@click.group("outbox")
def group() -> None:
    """The outbox: rows waiting to be published, and failed ones."""


@group.command("status")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 1000),
              help="Failed rows to list.")
@click.pass_obj
@runs_async
async def status(settings: Settings, limit: int) -> None:
    """Counts by status, the oldest pending row's age, and the failed rows."""
    async with settings.backend(needs=_NEEDS) as db:
        stats = await db.outbox.get_stats()
        failed = await db.outbox.get_failed_events(limit) if limit else []
    oldest = stats.oldest_pending
    age = None if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    rows = [
        {
            "id": row.id, "event_id": row.event_id, "event_type": row.event_type,
            "aggregate_id": row.aggregate_id, "retry_count": row.retry_count,
            "last_error": row.last_error,
        }
        for row in failed
    ]
    out = settings.out
    if out.json_mode:
        out.json({"stats": stats, "oldest_pending_age_seconds": age, "failed": rows})
        return
    out.table(
        None,
        ["pending", "published", "failed", "oldest pending (s)", "average retries"],
        [(stats.pending_count, stats.published_count, stats.failed_count, age,
          stats.avg_retries)],
    )
    if rows:
        out.table(
            "failed rows",
            ["id", "event type", "event id", "retries", "last error"],
            [(r["id"], r["event_type"], r["event_id"], r["retry_count"], r["last_error"])
             for r in rows],
        )


@group.command("retry-failed")
@click.option("--id", "outbox_id", metavar="UUID", help="Only this row.")
@yes_option
@click.pass_obj
def retry_failed(settings: Settings, outbox_id: str | None, yes: bool) -> None:
    """Put failed rows back to pending (retry count reset), for the relay to publish."""
    row_id = None
    if outbox_id is not None:
        try:
            row_id = UUID(outbox_id)
        except ValueError:
            raise CliUsageError(f"--id {outbox_id!r} is not a UUID") from None
    settings.run(_retry_failed(settings, row_id, yes))


async def _retry_failed(settings: Settings, row_id: UUID | None, yes: bool) -> None:
    out = settings.out
    async with settings.backend(needs=_NEEDS) as db:

        async def failed_ids() -> list[UUID]:
            # Every failed row (or the one asked for), to show and to compare before acting.
            rows = await db.outbox.get_failed_events(100_000)
            return sorted(row.id for row in rows if row_id is None or row.id == row_id)

        shown = await failed_ids()
        if not shown:
            out.note("no failed outbox rows: nothing to do")
            requeued = 0
        else:
            await settings.act(
                f"Will put {len(shown)} failed outbox rows back to pending",
                yes=yes, read=failed_ids, shown=shown,
            )
            requeued = await db.outbox.requeue_failed(row_id)
            out.note(f"{requeued} outbox rows are pending again")
    if out.json_mode:
        out.json({"requeued": requeued})
