"""The progress bar of long commands (copy, export, import, projections rebuild): done of
total, events per second and the time left, drawn by rich on stderr (nothing with `--json`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ProgressBar", "progress_bar"]


class ProgressBar:
    """One task of a rich `Progress`; `show` moves it (no-op when disabled)."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def show(self, done: int, total: int | None, rate: float, eta: float | None) -> None:
        """Draw `done` of `total` at `rate` events/s, `eta` seconds left (None: unknown)."""
        if self._progress is None:
            return
        self._progress.update(
            self._task, completed=done, total=total, rate=f"{rate:,.0f}",
            eta="-" if eta is None else _duration(eta),
        )


def _duration(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


@contextmanager
def progress_bar(label: str, *, enabled: bool) -> Iterator[ProgressBar]:
    """A bar labelled `label` for the duration of the block (to stderr), if `enabled`."""
    if not enabled:
        yield ProgressBar(None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TextColumn("ETA {task.fields[eta]}"),
        console=Console(stderr=True),
        refresh_per_second=8,
    )
    task = progress.add_task(label, total=None, rate="0", eta="-")
    with progress:
        yield ProgressBar(progress, task)
