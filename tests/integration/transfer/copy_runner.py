"""Run by test_copy_kill.py in a subprocess: copy a SQLite file into a PostgreSQL schema with
the merge rule, printing each progress report's source position (flushed) for the parent."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from transfer_support import fresh_pg_store, merge_priced, sqlite_store

from eventsource.transfer import TransferProgress, copy_events


def _print(progress: TransferProgress) -> None:
    print(progress.position, flush=True)


async def main(source_path: str, pg_url: str, schema: str) -> None:
    engine = create_async_engine(
        pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    target = fresh_pg_store(async_sessionmaker(engine))
    async with sqlite_store(source_path) as source:  # type: ignore[arg-type]
        await copy_events(source, target, merge_priced, batch_size=1000,
                          on_progress=_print, progress_interval=0)
    await target.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
