"""Type aliases shared across the package."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

AggregateId = UUID
EventId = UUID
TenantId = UUID
CorrelationId = UUID
CausationId = UUID
JSON = dict[str, Any]  # a JSON object: payloads, metadata, snapshot state (values: any JSON value)
TState = TypeVar("TState", bound=BaseModel)

__all__ = ["JSON", "AggregateId", "CausationId", "CorrelationId", "EventId", "TState", "TenantId"]
