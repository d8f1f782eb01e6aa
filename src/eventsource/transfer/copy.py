"""`copy_events`: every event of one store into another, through an optional transform,
resumable after a kill; and `translate_position` for the checkpoints of subscriptions.

The source is read through its normal read path (`read_all`: the codec's decoding, so upcast
events arrive upcast) a window at a time; the transform (`eventsource.transfer.transform`)
turns the window's events into the events to write; the target writes them, the map from
source to target positions and the job's progress in one transaction per window
(`eventsource.transfer._endpoint`). The progress is the source position up to which every
event is done; events after it that a window already consumed (a stream held back for a
merge lets later streams go on) are in the map, and skipped when the job resumes.
"""

from __future__ import annotations

import asyncio
import contextlib

from eventsource.stores.interface import EventStore
from eventsource.stores.records import ReadOptions, StoredEvent
from eventsource.transfer._endpoint import endpoint_for
from eventsource.transfer.progress import ProgressCallback, ProgressMeter, TransferProgress
from eventsource.transfer.rows import JobState
from eventsource.transfer.transform import Transform, Window

__all__ = ["copy_events", "translate_position"]


async def copy_events(
    source: EventStore,
    target: EventStore,
    transform: Transform | None = None,
    *,
    job: str = "copy",
    batch_size: int = 2000,
    on_progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
) -> TransferProgress:
    """Copy every event of `source` into `target` (any bundled backends), stream by stream in
    order, through `transform` (None: unchanged); return the final progress.

    Run again with the same `job` after a failure or a kill, it resumes where the target's
    recorded progress says, writing no event twice; run again after it finished, it copies
    only events appended to the source since. A transform that raises or returns something
    that cannot be stored stops the copy with `TransformError` naming the source event; the
    batch it was in is not written.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    writer = endpoint_for(target)
    await writer.prepare()
    state = await writer.job_state(job) or JobState(0, 0, 0)
    skip = await writer.mapped_after(job, state.position)
    total = await source.get_global_position()
    meter = ProgressMeter(on_progress, progress_interval)
    carried: dict[str, list[StoredEvent]] = {}
    cursor, read, written, this_run = state.position, state.events_read, state.events_written, 0

    def progress(finished: bool = False) -> TransferProgress:
        return TransferProgress(job, read, written, total, cursor, meter.elapsed(), this_run,
                                finished)

    writing: asyncio.Task[None] | None = None  # the previous window's write, still running
    try:
        while True:
            page = await source.read_all(ReadOptions(from_position=cursor, limit=batch_size))
            end = len(page.events) < batch_size
            if page.events:
                cursor = page.events[-1].global_position
            fresh = [s for s in page.events if s.global_position not in skip] if skip else (
                page.events
            )
            window = Window(carried, fresh, end, writer.registry)
            carried = window.run(transform)
            batch = window.encode()
            consumed = len(window.mapping)
            read, written, this_run = read + consumed, written + len(batch), this_run + consumed
            done_to = min(q[0].global_position for q in carried.values()) - 1 if carried else (
                cursor
            )
            if writing is not None:  # one window written at a time, in order
                await writing
                writing = None
            if consumed or done_to != state.position:
                state = JobState(done_to, read, written, end and not carried)
                # Runs while the next window is read and transformed.
                writing = asyncio.ensure_future(
                    writer.write_copy(job, batch, window.mapping, state)
                )
            if end and not carried:
                if writing is not None:
                    await writing
                    writing = None
                final = progress(finished=True)
                await meter.report(final, force=True)
                return final
            await meter.report(progress())
    finally:
        if writing is not None:  # a failure while a window was being written: let it finish
            with contextlib.suppress(Exception):
                await writing


async def translate_position(target: EventStore, source_position: int, job: str = "copy") -> int:
    """The target position a reader that had read the source up to `source_position` resumes
    from after the copy `job`: just before the first target event copied from a later source
    event, so nothing is skipped (an event merged from both sides of it is read again).

    Pass the result to `target.cursor_for_position` for a cursor. With every source event
    copied, it is the target's head.
    """
    if source_position < 0:
        raise ValueError(f"source_position must be >= 0, got {source_position}")
    writer = endpoint_for(target)
    await writer.prepare()
    found = await writer.translate(job, source_position)
    if found is None:
        return await target.get_global_position()
    return found - 1
