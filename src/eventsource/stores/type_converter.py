"""Type conversion for loosely typed payload fields when rebuilding stored events.

Typed fields need nothing: pydantic validates them from the JSON text (a `str` field stays a
`str`, e.g. `customer_id="cust-123"`). Only fields annotated `Any` (or unannotated) receive raw
JSON strings; for those, a converter decides which strings become UUIDs.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsource.events.base import DomainEvent

__all__ = [
    "DEFAULT_STRING_ID_FIELDS",
    "DEFAULT_UUID_FIELDS",
    "DefaultTypeConverter",
    "TypeConverter",
]

DEFAULT_UUID_FIELDS: frozenset[str] = frozenset(
    {"event_id", "aggregate_id", "tenant_id", "correlation_id", "causation_id"}
)
DEFAULT_STRING_ID_FIELDS: frozenset[str] = frozenset({"actor_id"})


@runtime_checkable
class TypeConverter(Protocol):
    """Turns raw JSON values of loosely typed fields into richer Python values."""

    def needs_conversion(self, event_class: type[DomainEvent]) -> bool:
        """False when every field is typed (the fast path: validate straight from JSON)."""

    def convert(self, event_class: type[DomainEvent], data: dict[str, Any]) -> dict[str, Any]:
        """The payload with loosely typed values converted."""


class DefaultTypeConverter:
    """UUID strings in `Any` fields become UUIDs when the field is a UUID candidate.

    Candidates: `uuid_fields`, plus (with `auto_detect_uuid`) any name ending in `_id`, minus
    `string_id_fields`.
    """

    def __init__(
        self,
        uuid_fields: set[str] | frozenset[str] | None = None,
        string_id_fields: set[str] | frozenset[str] | None = None,
        auto_detect_uuid: bool = True,
    ) -> None:
        self.uuid_fields = frozenset(uuid_fields or ()) | DEFAULT_UUID_FIELDS
        self.string_id_fields = frozenset(string_id_fields or ()) | DEFAULT_STRING_ID_FIELDS
        self.auto_detect_uuid = auto_detect_uuid
        self._loose: dict[type[DomainEvent], tuple[str, ...]] = {}

    @classmethod
    def strict(cls, uuid_fields: set[str]) -> DefaultTypeConverter:
        """Only the listed fields are UUID candidates."""
        return cls(uuid_fields=uuid_fields, auto_detect_uuid=False)

    def _candidates(self, event_class: type[DomainEvent]) -> tuple[str, ...]:
        found = self._loose.get(event_class)
        if found is None:
            found = tuple(
                name for name, info in event_class.model_fields.items()
                if info.annotation in (Any, object, None) and self._is_candidate(name)
            )
            self._loose[event_class] = found
        return found

    def _is_candidate(self, name: str) -> bool:
        if name in self.string_id_fields:
            return False
        return name in self.uuid_fields or (self.auto_detect_uuid and name.endswith("_id"))

    def needs_conversion(self, event_class: type[DomainEvent]) -> bool:
        return bool(self._candidates(event_class))

    def convert(self, event_class: type[DomainEvent], data: dict[str, Any]) -> dict[str, Any]:
        for name in self._candidates(event_class):
            value = data.get(name)
            if isinstance(value, str):
                with suppress(ValueError):
                    data[name] = UUID(value)
        return data
