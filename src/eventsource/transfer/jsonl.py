"""JSON-Lines export and import of a whole store, for backups and moves.

One line per event, in global-position order: its position, ids, stream, version, tenant,
actor, times and `payload`, the stored JSON text itself as a string (never re-dumped, so a
row written by an older shape of its class exports as stored). Import writes each row as it
is, keeping positions and versions; it records its progress in the target with each batch,
so an import run again after a kill goes on after the last event it wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from uuid import UUID

from eventsource.exceptions import TransferError, TransferFileError
from eventsource.stores.interface import EventStore
from eventsource.transfer._endpoint import endpoint_for
from eventsource.transfer.progress import ProgressCallback, ProgressMeter, TransferProgress
from eventsource.transfer.rows import JobState, RawEvent

__all__ = ["export_jsonl", "import_jsonl"]

_KEYS = (
    "position", "event_id", "event_type", "aggregate_id", "aggregate_type", "tenant_id",
    "actor_id", "version", "timestamp", "payload", "stored_at",
)
_INTS = ("position", "version")
_OPTIONAL = ("tenant_id", "actor_id")


async def export_jsonl(
    store: EventStore,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
) -> TransferProgress:
    """Write every event of `store` to `path` (replaced) as JSON Lines; the final progress.

    The file is written beside `path` first and moved there when complete, so `path` never
    holds half an export.
    """
    reader = endpoint_for(store)
    await reader.prepare()
    total = await store.get_global_position()
    meter = ProgressMeter(on_progress, progress_interval)
    target = os.fspath(path)
    partial = f"{target}.partial"
    count, position = 0, 0
    # A local file, written a page at a time: each write is brief next to the page's query.
    with open(partial, "w", encoding="utf-8", newline="\n") as out:  # noqa: ASYNC230
        while True:
            rows = await reader.read_raw(position, batch_size)
            out.writelines(_line(row) for row in rows)
            count += len(rows)
            if rows:
                position = rows[-1].position
            if len(rows) < batch_size:
                break
            await meter.report(TransferProgress("export", count, count, total, position,
                                                meter.elapsed(), count))
    os.replace(partial, target)
    final = TransferProgress("export", count, count, total, position, meter.elapsed(), count,
                             True)
    await meter.report(final, force=True)
    return final


def _line(row: RawEvent) -> str:
    return json.dumps(dict(zip(_KEYS, row, strict=True)), ensure_ascii=False) + "\n"


async def import_jsonl(
    path: str | os.PathLike[str],
    store: EventStore,
    *,
    job: str = "import",
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
) -> TransferProgress:
    """Write the events of an `export_jsonl` file into `store`, keeping positions, versions,
    times and payload text; the final progress.

    Resumable: the target records, with each batch, the last position written under `job`;
    run again, the import skips the lines up to it. A malformed line raises
    `TransferFileError` naming it (the batches before it stay written and recorded).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = os.fspath(path)
    writer = endpoint_for(store)
    await writer.prepare()
    state = await writer.job_state(job) or JobState(0, 0, 0)
    total = _count_lines(source)
    meter = ProgressMeter(on_progress, progress_interval)
    read, written, line_number, this_run = state.events_read, state.events_written, 0, 0
    batch: list[RawEvent] = []
    last = state.position

    async def flush(finished: bool) -> None:
        nonlocal batch, written, state
        written += len(batch)
        state = JobState(last, read, written, finished)
        await writer.write_import(job, batch, state)
        batch = []

    with open(source, encoding="utf-8") as lines:  # noqa: ASYNC230 - as in export_jsonl
        for line_number, row in _rows(source, lines):
            if row.position <= last:
                if row.position <= state.position:
                    continue  # written by an earlier run of the job
                raise TransferFileError(source, line_number, f"position {row.position} is not "
                                        f"after the previous line's {last}")
            batch.append(row)
            last, read, this_run = row.position, read + 1, this_run + 1
            if len(batch) >= batch_size:
                await flush(False)
                await meter.report(TransferProgress(job, read, written, total, line_number,
                                                    meter.elapsed(), this_run))
    await flush(True)
    final = TransferProgress(job, read, written, total, line_number, meter.elapsed(), this_run,
                             True)
    await meter.report(final, force=True)
    return final


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as data:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: data.read(1 << 20), b""))
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _rows(path: str, lines: IO[str]) -> Iterator[tuple[int, RawEvent]]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, _parse(path, number, text)


def _parse(path: str, number: int, text: str) -> RawEvent:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise TransferFileError(path, number, f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TransferFileError(path, number, f"a JSON {type(data).__name__}, not an object")
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise TransferFileError(path, number, f"missing {', '.join(missing)}")
    for key in _KEYS:
        value = data[key]
        expected: type = int if key in _INTS else str
        if (value is None and key in _OPTIONAL) or (
            isinstance(value, expected) and not isinstance(value, bool)
        ):
            continue
        raise TransferFileError(path, number, f"{key} is {value!r:.80}, not a {expected.__name__}")
    if data["position"] < 1 or data["version"] < 1:
        raise TransferFileError(path, number, "position and version must be >= 1")
    _check_forms(path, number, data)
    return RawEvent(*(data[key] for key in _KEYS))


def _check_forms(path: str, number: int, data: dict[str, Any]) -> None:
    """What a store would keep but not read back: ids that are no UUIDs, times that are no
    ISO-8601 times, a payload that is no JSON object."""
    key = ""
    try:
        for key in ("event_id", "aggregate_id", "tenant_id"):
            if data[key] is not None:
                UUID(data[key])
        for key in ("timestamp", "stored_at"):
            datetime.fromisoformat(data[key])
        key = "payload"
        if not isinstance(json.loads(data[key]), dict):
            raise TypeError("not a JSON object")  # noqa: TRY301 - reported below, as the rest
    except (TypeError, ValueError) as exc:
        raise TransferFileError(path, number, f"{key} {data[key]!r:.80} is malformed ({exc})"
                                ) from None
