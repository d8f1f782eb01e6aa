"""The `eventsource` command: global options and the command groups, loaded when used.

Each group lives in its own module and is imported only when named (or for `--help`), so
`eventsource streams list` loads the SQLite or PostgreSQL code it needs and nothing else. A
new group (projections, export, web) is one module and one line in `_GROUPS`.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from eventsource.cli._context import Settings
from eventsource.cli._errors import exit_for

__all__ = ["cli", "main"]

# name -> "module:attribute" of a click command or group
_GROUPS = {
    "copy": "eventsource.cli.transfer:copy",
    "db": "eventsource.cli.db:group",
    "demo": "eventsource.cli.demo:command",
    "dlq": "eventsource.cli.dlq:group",
    "events": "eventsource.cli.events:group",
    "export": "eventsource.cli.transfer:export",
    "import": "eventsource.cli.transfer:import_",
    "outbox": "eventsource.cli.outbox:group",
    "projections": "eventsource.cli.projections:group",
    "purge": "eventsource.cli.purge:command",
    "snapshots": "eventsource.cli.snapshots:group",
    "streams": "eventsource.cli.streams:group",
    "subscriptions": "eventsource.cli.subscriptions:group",
    "web": "eventsource.cli.web:command",
}

_EPILOG = """Exit codes: 0 ok, 1 a check failed (or the command could not do its work),
2 usage, 3 not found, 4 conflict. See docs/cli.md."""


class _Root(click.Group):
    """Loads command groups on first use; turns every failure into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _GROUPS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # Click reports these itself (usage errors exit 2)
        except Exception as exc:
            exit_for(exc, debug=bool(ctx.params.get("debug")))


@click.group(cls=_Root, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="EVENTSOURCE_URL",
    metavar="URL",
    help="The store: sqlite:///path.db or postgresql://user@host/db[?schema=NAME] "
    "(or EVENTSOURCE_URL).",
)
@click.option(
    "--app",
    "app_spec",
    envvar="EVENTSOURCE_APP",
    metavar="MODULE[:FACTORY]",
    help="Import your event classes (and projections) from this module, calling FACTORY.",
)
@click.option("--tenant", metavar="UUID", help="Only this tenant's data (tenant_scope).")
@click.option("--json", "json_mode", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--debug", is_flag=True, help="Show the traceback of a failure.")
@click.version_option(package_name="eventsource-py", prog_name="eventsource")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    app_spec: str | None,
    tenant: str | None,
    json_mode: bool,
    debug: bool,
) -> None:
    """Look into and operate an eventsource store (SQLite or PostgreSQL)."""
    ctx.obj = Settings(url, app_spec, tenant, json_mode, debug)


def main() -> None:
    """The console script."""
    cli(prog_name="eventsource")
