"""An app whose events evolved, and rows as older code stored them (inserted by raw SQL), for
the operator tools' evolution views (`events types`, the web event page).

`ParcelWeighed` is at v3 and was once `ParcelMeasured`: v1 `{"weight_kg"}` → v2 `{"grams"}`
→ v3 `{"grams", "unit"}`. `ParcelLabelled` is at v2 with no upcaster from v1. `ParcelPacked`
(no class any more) v1 splits into one of each. The registry and its upcasters are the app's
own (`--app evolved_app:app`), not the default ones.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

from eventsource.cli._app import CliApp
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.evolution import Upcasters

__all__ = ["PARCEL", "REGISTRY", "ParcelLabelled", "ParcelWeighed", "app", "insert_row"]

REGISTRY = EventRegistry()
UPCASTERS = Upcasters(registry=REGISTRY)
PARCEL = UUID("b1000000-0000-4000-8000-000000000001")


@REGISTRY.register
class ParcelWeighed(DomainEvent):
    """v3 of a parcel's weight, stored as `ParcelMeasured` before the rename."""

    event_type: str = "ParcelWeighed"
    aggregate_type: str = "Parcel"
    event_version: int = 3
    renamed_from: ClassVar[tuple[str, ...]] = ("ParcelMeasured",)
    grams: int
    unit: str


@REGISTRY.register
class ParcelLabelled(DomainEvent):
    """v2, with no upcaster from v1: v1 rows cannot be read."""

    event_type: str = "ParcelLabelled"
    aggregate_type: str = "Parcel"
    event_version: int = 2
    label: str
    carrier: str


@UPCASTERS.upcaster("ParcelMeasured", 1)
def _kilograms_to_grams(data: dict[str, Any]) -> dict[str, Any]:
    data["grams"] = round(data.pop("weight_kg") * 1000)
    return data


@UPCASTERS.upcaster("ParcelWeighed", 2)
def _unit(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "unit": "g"}


@UPCASTERS.split("ParcelPacked", 1, into=["ParcelWeighed", "ParcelLabelled"])
def _unpack(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"event_type": "ParcelWeighed", "grams": data["grams"], "unit": "g"},
        {"event_type": "ParcelLabelled", "label": data["label"], "carrier": "post"},
    ]


def app() -> CliApp:
    """`--app evolved_app:app`."""
    return CliApp(registry=REGISTRY)


def insert_row(
    url: str, event_type: str, version: int, fields: dict[str, Any], stream_version: int
) -> None:
    """Store one `Parcel` event row as older code wrote it: raw SQL, `event_version` as
    given, no class involved."""
    event_id = uuid4()
    payload = json.dumps({
        "event_id": str(event_id), "event_type": event_type, "event_version": version,
        "aggregate_id": str(PARCEL), "aggregate_type": "Parcel",
        "aggregate_version": stream_version, "occurred_at": "2024-01-01T00:00:00+00:00",
        "tenant_id": None, "actor_id": None, "correlation_id": str(event_id),
        "causation_id": None, "metadata": {}, **fields,
    })
    values = (str(event_id), event_type, str(PARCEL), "Parcel", stream_version, payload)
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(
                "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
                " timestamp, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values[:5], datetime(2024, 1, 1, tzinfo=UTC).isoformat(), values[5]),
            )
        conn.close()
        return
    asyncio.run(_insert_postgresql(url, values))


async def _insert_postgresql(url: str, values: tuple[Any, ...]) -> None:
    import asyncpg

    parts = urlsplit(url)
    schema = parse_qs(parts.query)["schema"][0]
    conn = await asyncpg.connect(
        parts._replace(query="").geturl(), server_settings={"search_path": schema}
    )
    try:
        await conn.execute(
            "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
            ' "timestamp", payload) VALUES ($1, $2, $3, $4, $5, now(), $6::jsonb)',
            UUID(values[0]), values[1], UUID(values[2]), values[3], values[4], values[5],
        )
    finally:
        await conn.close()
