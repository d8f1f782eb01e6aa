"""`eventsource export FILE | import FILE | copy --to URL [--transform MODULE:FUNCTION]`:
moving a store's events (see docs/evolution-migration.md), with a progress bar."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import click

from eventsource.cli._app import _import
from eventsource.cli._backend import Backend, parse_url
from eventsource.cli._context import Settings, yes_option
from eventsource.cli._errors import CliUsageError, NotFoundError
from eventsource.cli._events import BrowsingRegistry
from eventsource.cli._progress import ProgressBar, progress_bar
from eventsource.cli._runner import runs_async
from eventsource.transfer import TransferProgress
from eventsource.transfer.rows import JobState

__all__ = ["copy", "export", "import_"]

F = TypeVar("F", bound=Callable[..., Any])

_batch_option = click.option(
    "--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000),
    help="Events per transaction in the target.",
)


def _job_option(default: str) -> Callable[[F], F]:
    return click.option(
        "--job", default=default, show_default=True,
        help="The name the target records progress under: run again to resume it.",
    )


def _whole_store(settings: Settings, **options: Any) -> AbstractAsyncContextManager[Backend]:
    """`settings.backend`, refusing `--tenant`: these commands move whole stores."""
    if settings.tenant is not None:
        raise CliUsageError(
            "export, import and copy move whole stores: --tenant is not supported with them"
        )
    return settings.backend(**options)


def _shower(bar: ProgressBar) -> Any:
    def show(progress: TransferProgress) -> None:
        bar.show(progress.position, progress.events_total, progress.events_per_second,
                 progress.eta_seconds)

    return show


def _summary(settings: Settings, what: str, done: TransferProgress) -> None:
    out = settings.out
    if out.json_mode:
        out.json({
            "job": done.job, "events_read": done.events_read,
            "events_written": done.events_written, "position": done.position,
            "events_per_second": round(done.events_per_second, 1),
            "seconds": round(done.elapsed_seconds, 3),
        })
    out.note(
        f"{what}: {done.read_this_run:,} events in {done.elapsed_seconds:.1f} s "
        f"({done.events_per_second:,.0f} events/s); job {done.job!r} has read "
        f"{done.events_read:,} and written {done.events_written:,}"
    )


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@yes_option
@click.pass_obj
def export(settings: Settings, file: Path, yes: bool) -> None:
    """Write every event to FILE as JSON Lines (payloads as stored)."""
    settings.run(_export(settings, file, file.exists(), yes))


async def _export(settings: Settings, file: Path, exists: bool, yes: bool) -> None:
    from eventsource.transfer import export_jsonl

    async with _whole_store(settings) as db:
        head = await db.store.get_global_position()
        if exists:
            await settings.act(
                f"Will replace {file} with the {head:,} events of {db.url.shown}", yes=yes,
                read=lambda: _exists(file), shown=True,
            )
        with progress_bar("export", enabled=not settings.out.json_mode) as bar:
            done = await export_jsonl(db.store, file, on_progress=_shower(bar))
    _summary(settings, f"exported to {file}", done)


async def _exists(file: Path) -> bool:
    return await asyncio.to_thread(file.exists)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_job_option("import")
@_batch_option
@yes_option
@click.pass_obj
def import_(settings: Settings, file: Path, job: str, batch_size: int, yes: bool) -> None:
    """Write the events of an export FILE into the store, keeping positions (resumable)."""
    if not file.is_file():
        raise NotFoundError(f"no file {str(file)!r} to import")
    settings.run(_import_file(settings, file, os.path.getsize(file), job, batch_size, yes))


async def _import_file(
    settings: Settings, file: Path, size: int, job: str, batch_size: int, yes: bool
) -> None:
    from eventsource.transfer import import_jsonl
    from eventsource.transfer._endpoint import endpoint_for

    async with _whole_store(settings, needs=(), create=True) as db:
        writer = endpoint_for(db.store)
        await writer.prepare()
        state = await _state(db, job)
        resumed = "" if state is None else f", resuming after position {state.position:,}"
        await settings.act(
            f"Will import {file} ({size:,} bytes) into {db.url.shown} "
            f"(job {job!r}{resumed})",
            yes=yes, read=lambda: _state(db, job), shown=state,
        )
        with progress_bar("import", enabled=not settings.out.json_mode) as bar:
            done = await import_jsonl(file, db.store, job=job, batch_size=batch_size,
                                      on_progress=_shower(bar))
    _summary(settings, f"imported {file}", done)


async def _state(db: Backend, job: str) -> JobState | None:
    from eventsource.transfer._endpoint import endpoint_for

    return await endpoint_for(db.store).job_state(job)


@click.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL", help="The target store.")
@click.option(
    "--transform", "transform_spec", metavar="MODULE:FUNCTION",
    help="Each step's events go through FUNCTION (see docs/evolution-migration.md).",
)
@_job_option("copy")
@_batch_option
@yes_option
@click.pass_obj
@runs_async
async def copy(
    settings: Settings, to_url: str, transform_spec: str | None, job: str, batch_size: int,
    yes: bool,
) -> None:
    """Copy every event into the store at --to, through --transform (resumable)."""
    from eventsource.transfer import copy_events

    transform = _load_transform(transform_spec) if transform_spec else None
    target_url = parse_url(to_url)
    async with _whole_store(settings) as db:
        app = await settings.app()
        target = await Backend.open(target_url, BrowsingRegistry(app.registry), create=True)
        try:
            from eventsource.transfer._endpoint import endpoint_for

            await endpoint_for(target.store).prepare()

            async def now() -> tuple[int, JobState | None]:
                return await db.store.get_global_position(), await _state(target, job)

            shown = await now()
            head, state = shown
            resumed = "" if state is None else f", resuming after position {state.position:,}"
            through = f" through {transform_spec}" if transform_spec else ""
            await settings.act(
                f"Will copy the {head:,} events of {db.url.shown} into {target_url.shown}"
                f"{through} (job {job!r}{resumed})",
                yes=yes, read=now, shown=shown,
            )
            with progress_bar("copy", enabled=not settings.out.json_mode) as bar:
                done = await copy_events(db.store, target.store, transform, job=job,
                                         batch_size=batch_size, on_progress=_shower(bar))
        finally:
            await target.close()
    _summary(settings, f"copied into {target_url.shown}", done)


def _load_transform(spec: str) -> Any:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise CliUsageError(f"--transform {spec!r} is not of the form module:function")
    module = _import(module_name, spec, "--transform")
    found = module
    for part in name.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise CliUsageError(f"--transform {spec!r}: {module_name!r} has no {name!r}")
    if not callable(found):
        raise CliUsageError(f"--transform {spec!r} is a {type(found).__name__}, not a function")
    return found
