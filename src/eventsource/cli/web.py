"""`eventsource web`: the web UI (`eventsource.web.create_app`) served by uvicorn.

The store, `--app` and `--tenant` are checked first, the way every command checks them, so
a bad URL, an unreachable database, a wrong `--app` path or an unknown tenant is one line on
stderr and an exit code, before anything listens. Binds 127.0.0.1 unless told otherwise;
read-only unless `--allow-writes`.
"""

from __future__ import annotations

import click

from eventsource.cli._context import Settings
from eventsource.cli._errors import CliUsageError

__all__ = ["command"]


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--allow-writes", is_flag=True,
    help="Offer dead-letter retry/resolve and checkpoint reset (each confirmed, CSRF-checked).",
)
@click.pass_obj
def command(settings: Settings, host: str, port: int, allow_writes: bool) -> None:
    """Serve the web UI and its JSON API (/api/) for the store."""
    try:
        import uvicorn

        from eventsource.web import create_app
    except ImportError as exc:
        raise CliUsageError(
            f"eventsource web needs the web extra ({exc.name} is missing): "
            "pip install 'eventsource-py[web]'"
        ) from None
    settings.run(_check(settings))
    url = settings.url
    assert url is not None  # _check failed otherwise
    app = create_app(
        url, app=settings.run(settings.app()),
        allow_writes=allow_writes, tenant=settings.tenant_id(),
    )
    mode = "writes allowed" if allow_writes else "read-only"
    settings.out.note(f"serving {settings.store_url().shown} on http://{host}:{port}/ ({mode})")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)


async def _check(settings: Settings) -> None:
    """Open the store once as any command would: every bad input fails here, in one line."""
    async with settings.backend():
        pass
