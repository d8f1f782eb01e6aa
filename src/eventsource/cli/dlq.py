"""`eventsource dlq list | show ID | retry [ID...|--all] | resolve ID`: dead letters.

`retry` hands each entry's event to the projection that failed on it again
(`retry_dead_letters`), so that projection must come from `--app` (a `CliApp` listing it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from eventsource.cli._backend import Backend
from eventsource.cli._context import Settings, yes_option
from eventsource.cli._errors import CheckFailedError, CliUsageError, ConflictError, NotFoundError
from eventsource.cli._runner import runs_async
from eventsource.repositories.dlq import DLQEntry

__all__ = ["group"]

_NEEDS = ("events", "dlq")
_BY = "eventsource-cli"
_STATUSES = ("failed", "retrying", "resolved")


@click.group("dlq")
def group() -> None:
    """Dead letters: events a projection failed on for good."""


def _summary(entry: DLQEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "projection_name": entry.projection_name,
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "status": entry.status,
        "retry_count": entry.retry_count,
        "first_failed_at": entry.first_failed_at,
        "last_failed_at": entry.last_failed_at,
        "error_message": entry.error_message,
    }


def _detail(entry: DLQEntry) -> dict[str, Any]:
    data = entry.event_data
    return {
        **_summary(entry),
        "resolved_at": entry.resolved_at,
        "resolved_by": entry.resolved_by,
        "error_stacktrace": entry.error_stacktrace,
        "event_data": json.loads(data) if isinstance(data, str) else data,
    }


async def _entry(db: Backend, dlq_id: int) -> DLQEntry:
    entry = await db.dlq.get_failed_event_by_id(dlq_id)
    if entry is None:
        raise NotFoundError(f"no dead letter with id {dlq_id} in {db.url.shown}")
    return entry


@group.command("list")
@click.option("--projection", metavar="NAME", help="Only this projection's entries.")
@click.option("--status", type=click.Choice(_STATUSES), default="failed", show_default=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_obj
@runs_async
async def list_(settings: Settings, projection: str | None, status: str, limit: int) -> None:
    """Entries, newest failure first."""
    async with settings.backend(needs=_NEEDS) as db:
        entries = await db.dlq.get_failed_events(projection, status, limit)
        stats = await db.dlq.get_failure_stats()
    out = settings.out
    if out.json_mode:
        out.json({"entries": [_summary(entry) for entry in entries], "stats": stats})
        return
    out.table(
        None,
        ["id", "projection", "event type", "event id", "retries", "last failed", "error"],
        [
            (e.id, e.projection_name, e.event_type, e.event_id, e.retry_count, e.last_failed_at,
             e.error_message[:80])
            for e in entries
        ],
    )
    out.note(
        f"{stats.total_failed} failed, {stats.total_retrying} retrying, in "
        f"{stats.affected_projections} projections"
    )


@group.command("show")
@click.argument("dlq_id", type=int)
@click.pass_obj
@runs_async
async def show(settings: Settings, dlq_id: int) -> None:
    """One entry, with its error, stack trace and event (exit 3 if unknown)."""
    async with settings.backend(needs=_NEEDS) as db:
        detail = _detail(await _entry(db, dlq_id))
    out = settings.out
    if out.json_mode:
        out.json(detail)
        return
    trace, event = detail.pop("error_stacktrace"), detail.pop("event_data")
    out.table(None, ["field", "value"], list(detail.items()))
    out.line("event:")
    out.line(json.dumps(event, indent=2, ensure_ascii=False))
    if trace:
        out.line("stack trace:")
        out.line(trace.rstrip())


@group.command("resolve")
@click.argument("dlq_id", type=int)
@click.option("--by", "resolved_by", default=_BY, show_default=True, help="Kept as resolved_by.")
@yes_option
@click.pass_obj
@runs_async
async def resolve(settings: Settings, dlq_id: int, resolved_by: str, yes: bool) -> None:
    """Mark an entry resolved without retrying it (exit 4 if it already is)."""
    async with settings.backend(needs=_NEEDS) as db:
        entry = await _entry(db, dlq_id)
        if entry.status == "resolved":
            raise ConflictError(
                f"dead letter {dlq_id} is already resolved (by {entry.resolved_by})"
            )
        await settings.act(
            f"Will mark dead letter {dlq_id} ({entry.projection_name}, {entry.event_type} "
            f"{entry.event_id}, {entry.status}) resolved by {resolved_by!r}",
            yes=yes,
            read=lambda: _statuses(db, [dlq_id]),
            shown=_shown([(dlq_id, entry.status)]),
        )
        await db.dlq.mark_resolved(dlq_id, resolved_by)
    settings.out.note(f"dead letter {dlq_id} resolved")
    if settings.out.json_mode:
        settings.out.json({"resolved": [dlq_id]})


Statuses = list[tuple[int, str | None]]


async def _statuses(db: Backend, ids: Sequence[int | str]) -> Statuses:
    """What `act` compares: each entry's status now (None: gone)."""
    found: Statuses = []
    for dlq_id in ids:
        entry = await db.dlq.get_failed_event_by_id(dlq_id)
        found.append((int(dlq_id), None if entry is None else entry.status))
    return found


def _shown(pairs: list[tuple[int | str, str | None]]) -> Statuses:
    return [(int(dlq_id), status) for dlq_id, status in pairs]


@group.command("retry")
@click.argument("dlq_ids", type=int, nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every failed entry (of --projection).")
@click.option("--projection", metavar="NAME", help="With --all: only this projection's.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@yes_option
@click.pass_obj
def retry(
    settings: Settings,
    dlq_ids: tuple[int, ...],
    every: bool,
    projection: str | None,
    limit: int,
    yes: bool,
) -> None:
    """Hand failed entries to their projection (from --app) again.

    Resolved when it succeeds; failed again (exit 1) when it does not.
    """
    if bool(dlq_ids) == every:
        raise CliUsageError("dlq retry needs DLQ ids or --all (not both)")
    settings.run(_retry(settings, list(dlq_ids), projection, limit, yes))


async def _targets(
    db: Backend, ids: list[int], projection: str | None, limit: int
) -> list[DLQEntry]:
    if not ids:
        return list(reversed(await db.dlq.get_failed_events(projection, "failed", limit)))
    entries = [await _entry(db, dlq_id) for dlq_id in ids]
    for entry in entries:
        if entry.status != "failed":
            raise ConflictError(
                f"dead letter {entry.id} is {entry.status}, not failed: not retried"
            )
    return entries


async def _retry(
    settings: Settings, ids: list[int], projection: str | None, limit: int, yes: bool
) -> None:
    from eventsource.subscriptions.dead_letters import retry_dead_letters

    app = await settings.app()
    out = settings.out
    async with settings.backend(needs=_NEEDS) as db:
        entries = await _targets(db, ids, projection, limit)
        if not entries:
            out.note("no failed dead letters: nothing to retry")
            if out.json_mode:
                out.json({"resolved": [], "failed": [], "undecodable": []})
            return
        groups: dict[str, list[int | str]] = {}
        for entry in entries:
            groups.setdefault(entry.projection_name, []).append(entry.id)
        known = app.projection_map()
        missing = sorted(set(groups) - set(known))
        if missing:
            raise CliUsageError(
                f"dlq retry needs the projection(s) {', '.join(missing)}: pass --app "
                "module:factory whose factory returns CliApp(projections=[...]) with them"
            )
        every_id = [entry.id for entry in entries]
        await settings.act(
            f"Will hand {len(entries)} dead letters (ids {', '.join(map(str, every_id))}) to "
            f"{', '.join(sorted(groups))} again",
            yes=yes,
            read=lambda: _statuses(db, every_id),
            shown=_shown([(entry.id, "failed") for entry in entries]),
        )
        outcome: dict[str, list[int | str]] = {"resolved": [], "failed": [], "undecodable": []}
        for name, group_ids in groups.items():
            result = await retry_dead_letters(
                db.dlq, known[name], projection_name=name, resolved_by=_BY,
                registry=app.registry, dlq_ids=group_ids,
            )
            outcome["resolved"] += result.resolved
            outcome["failed"] += result.failed
            outcome["undecodable"] += result.undecodable
    if out.json_mode:
        out.json(outcome)
    out.note(", ".join(f"{key}: {len(value)}" for key, value in outcome.items()))
    if outcome["failed"] or outcome["undecodable"]:
        bad = outcome["failed"] + outcome["undecodable"]
        raise CheckFailedError(f"dead letters {', '.join(map(str, bad))} were not resolved")
