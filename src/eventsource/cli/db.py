"""`eventsource db init | check | sql`: the schema, from `eventsource.migrations`."""

from __future__ import annotations

from typing import Any

import click

from eventsource.cli._backend import Backend, BackendName
from eventsource.cli._context import Settings, yes_option
from eventsource.cli._errors import CheckFailedError, CliUsageError
from eventsource.cli._runner import runs_async
from eventsource.cli._schema import TableState, schema_names, table_states
from eventsource.migrations import get_schema, list_schemas

__all__ = ["create_tables", "group"]


@click.group("db")
def group() -> None:
    """Create, check and print the database schema."""


@group.command("check")
@click.pass_obj
@runs_async
async def check(settings: Settings) -> None:
    """Check every table and column exists; exit 1 (saying what to run) if not.

    The tables of optional features (retention, DCB, transfer) may be absent, all of them;
    once one of a feature's tables exists, the feature's tables are checked like the rest.
    """
    url = settings.store_url()
    async with settings.backend(needs=(), create=url.backend == "sqlite") as db:
        states = await table_states(db)
    out, ok = settings.out, all(state.ok for state in states)
    hint = f"eventsource --url {url.shown} db init"
    if out.json_mode:
        out.json({
            "ok": ok,
            "backend": db.kind,
            "tables": [
                {"table": s.table, "exists": s.exists, "missing_columns": list(s.missing_columns),
                 "feature": s.feature, "optional": s.optional, "ok": s.ok}
                for s in states
            ],
            "fix": None if ok else hint,
        })
    else:
        out.table(None, ["table", "state"], [(s.table, s.describe()) for s in states])
    if not ok:
        raise CheckFailedError(f"{_summary(states)}: run `{hint}`")


def _summary(states: list[TableState]) -> str:
    missing = [s.table for s in states if not s.ok and not s.exists]
    lacking = [s.table for s in states if not s.ok and s.exists]
    parts = []
    if missing:
        parts.append(f"missing tables {', '.join(missing)}")
    if lacking:
        parts.append(f"tables lacking columns {', '.join(lacking)}")
    elsewhere = [s.table for s in states if not s.ok and not s.by_init]
    if elsewhere:
        parts.append(
            f"{', '.join(elsewhere)} are made by their feature on first use, not by db init "
            "(see docs/cli.md)"
        )
    return "; ".join(parts)


@group.command("init")
@yes_option
@click.pass_obj
@runs_async
async def init(settings: Settings, yes: bool) -> None:
    """Create the missing tables and columns (idempotent; creates an SQLite file)."""
    async with settings.backend(needs=(), create=True) as db:
        states = await table_states(db)
        todo = [state for state in states if state.by_init and not state.complete]
        if not todo:
            settings.out.note(f"{db.url.shown}: every table is in place; nothing to do")
        else:
            work = ", ".join(
                f"{s.table} ({s.describe() if s.exists else 'missing'})" for s in todo
            )
            await settings.act(
                f"Will create or upgrade in {db.url.shown}: {work}",
                yes=yes,
                read=lambda: table_states(db),
                shown=states,
            )
            await create_tables(db)
            settings.out.note(f"{db.url.shown}: created or upgraded {len(todo)} tables")
        final = await table_states(db)
    if settings.out.json_mode:
        settings.out.json({"created": [s.table for s in todo], "ok": all(s.ok for s in final)})


async def create_tables(db: Backend) -> None:
    """Apply every shipped schema file (idempotent: creates what is missing, upgrades the rest)."""
    names = schema_names(db.kind)
    if db.kind == "sqlite":
        from eventsource.migrations.upgrade import upgrade_sqlite
        from eventsource.stores.sqlite import SQLiteEventStore

        assert isinstance(db.store, SQLiteEventStore)
        link = await db.store._open()
        for name in names:  # each file, then the columns later versions added
            await link.run(upgrade_sqlite, name)
        return
    from eventsource._sql.postgresql import apply_schema, driver_connection

    async with driver_connection(db.engine, "creating the tables") as conn:
        await apply_schema(conn, names)


@group.command("sql")
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgresql"]),
    help="The dialect (default: that of --url).",
)
@click.option(
    "--table",
    "name",
    default="all",
    show_default=True,
    help="One schema file: events, events_partitioned, outbox, checkpoints, dlq, snapshots.",
)
@click.pass_obj
def sql(settings: Settings, backend: str | None, name: str) -> None:
    """Print the DDL (to run it yourself, or to review it)."""
    chosen: Any = backend or (settings.store_url().backend if settings.url else None)
    if chosen is None:
        raise CliUsageError("db sql needs --backend sqlite|postgresql (or --url)")
    kind: BackendName = chosen
    if name != "all" and name not in list_schemas(kind):
        known = ", ".join(list_schemas(kind))
        raise CliUsageError(f"--table {name!r} is not a {kind} schema; known: {known}, all")
    script = get_schema(name, kind)
    if settings.out.json_mode:
        settings.out.json({"backend": kind, "table": name, "sql": script})
    else:
        settings.out.line(script.rstrip("\n"))
