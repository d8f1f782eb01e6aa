"""A `DatabaseProjection` transaction that its time limit (or its own `_process_batch`) would
cut between two parts of a split applies the rest of the parts first: a split is one unit, so
the checkpoint at its row's position never leaves a part behind. On a SQLite file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

from evo_support import PARTS_READ_MODEL, CustomerMoved, CustomerRenamed, evolution, sqlite_backend
from sqlalchemy import text

from eventsource import DomainEvent
from eventsource.projections.base import DatabaseProjection
from eventsource.projections.decorators import handles
from eventsource.repositories.sqlite import SQLiteCheckpointRepository

_APPLY = text("INSERT INTO rm_parts (event_id, applications) VALUES (:id, 1)")


class CutAfterTwo(DatabaseProjection):
    """Applies at most two events per transaction, as a time limit reached after two would."""

    @handles(CustomerRenamed)
    async def _renamed(self, conn: Any, event: CustomerRenamed) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})

    @handles(CustomerMoved)
    async def _moved(self, conn: Any, event: CustomerMoved) -> None:
        await conn.execute(_APPLY, {"id": str(event.event_id)})

    async def _process_batch(self, conn: Any, events: Sequence[DomainEvent]) -> int | None:
        for event in events[:2]:
            await self._dispatch(event)
        return 2 if len(events) > 2 else None


async def test_a_cut_inside_a_split_finishes_the_split(tmp_path: Path) -> None:
    registry, _ = evolution()
    async with sqlite_backend(str(tmp_path / "events.db"), registry) as opened:
        async with opened.sessions() as session, session.begin():
            await session.execute(text(PARTS_READ_MODEL))
        checkpoints = SQLiteCheckpointRepository(opened.store)  # type: ignore[arg-type]
        projection = CutAfterTwo(opened.sessions, checkpoints)
        customer = uuid4()
        events: list[DomainEvent] = [
            CustomerMoved(aggregate_id=customer, city="Oslo"),  # row 1
            CustomerRenamed(aggregate_id=customer, full_name="A"),  # row 2, part 1
            CustomerMoved(aggregate_id=customer, city="Rome"),  # row 2, part 2
            CustomerMoved(aggregate_id=customer, city="Lima"),  # row 3
        ]
        applied = await projection.commit_batch(events, position=3, positions=[1, 2, 2, 3])
        assert applied == 3
        assert await checkpoints.get_position(projection.projection_name) == 2
        async with opened.sessions() as session:
            found = await session.execute(text("SELECT event_id FROM rm_parts"))
            assert sorted(str(r) for (r,) in found.all()) == sorted(
                str(e.event_id) for e in events[:3]
            )
