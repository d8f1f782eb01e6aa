"""Output: tables for people (rich, imported only when a table is drawn), JSON for scripts.

Results go to stdout; plans, prompts and notes go to stderr, so `--json` output stays pure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import click

from eventsource.cli._errors import CliError

__all__ = ["Output", "plain", "to_json"]


def plain(value: Any) -> Any:
    """`value` with UUIDs, datetimes, enums and dataclasses as JSON-ready data."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Enum) else value


def to_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(plain(value), indent=indent, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(plain(value))


class Output:
    """Where a command's results go, in the format `--json` chose."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode

    def json(self, value: Any) -> None:
        click.echo(to_json(value))

    def json_line(self, value: Any) -> None:
        """One JSON document per line (streamed output: `events tail`)."""
        click.echo(to_json(value, indent=None))

    def line(self, text: str) -> None:
        click.echo(text)

    def note(self, text: str) -> None:
        """Information for the person at the terminal (stderr)."""
        click.echo(text, err=True)

    def table(
        self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", box=None, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        wide = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
        Console(file=sys.stdout, width=wide, highlight=False).print(table)

    def keyset_page(
        self,
        name: str,
        rows: Sequence[Any],
        limit: int,
        columns: Sequence[str],
        cells: Callable[[Any], Sequence[Any]],
    ) -> None:
        """A page of `eventsource <name> list` (rows are dataclasses with a `stream_id`): JSON
        with the `next` cursor, or a table and the command for the next page."""
        following = rows[-1].stream_id if len(rows) == limit else None
        if self.json_mode:
            listed = [{"stream_id": row.stream_id, **plain(row)} for row in rows]
            self.json({name: listed, "next": following})
            return
        self.table(None, columns, [cells(row) for row in rows])
        if following is not None:
            self.note(f"more: eventsource {name} list --after {following}")
        elif not rows:
            self.note(f"no {name}")

    def confirm(self, plan: str, *, yes: bool) -> None:
        """Say what the command will do; unless `yes`, ask (on stderr) and stop if declined."""
        self.note(plan)
        if yes:
            return
        try:
            agreed = click.confirm("Go ahead?", default=False, err=True)
        except click.Abort:  # no answer: end of input, or Ctrl-C
            agreed = False
            self.note("")
        if not agreed:
            raise CliError("aborted: nothing was changed (pass --yes to skip the question)")
