"""JSON helpers that write UUIDs as strings and datetimes as ISO strings."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel

__all__ = ["EventSourceJSONEncoder", "json_dumps", "json_loads"]


class EventSourceJSONEncoder(json.JSONEncoder):
    """A `json.JSONEncoder` for UUIDs, datetimes, Decimals, enums and pydantic models."""

    def default(self, o: Any) -> Any:
        if isinstance(o, UUID | Decimal):
            return str(o)
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, Enum):
            return o.value
        if isinstance(o, BaseModel):
            return o.model_dump(mode="json")
        return super().default(o)


def json_dumps(obj: Any) -> str:
    """`json.dumps` with `EventSourceJSONEncoder`."""
    return json.dumps(obj, cls=EventSourceJSONEncoder)


def json_loads(text: str | bytes) -> Any:
    """`json.loads`."""
    return json.loads(text)
