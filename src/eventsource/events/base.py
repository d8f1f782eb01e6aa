"""`DomainEvent`: an immutable pydantic v2 model with the event-sourcing envelope fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from eventsource._ids import new_uuid4, new_uuid7
from eventsource.types import JSON

__all__ = ["DomainEvent"]


_SHARED_FIELD_SETS: dict[tuple[str, ...], set[str]] = {}
_object_setattr = object.__setattr__


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DomainEvent(BaseModel):
    """Something that happened to an aggregate. Subclass it and add payload fields.

    Subclasses give `event_type` and `aggregate_type` string defaults. Instances are frozen:
    assigning an attribute raises `pydantic.ValidationError`; the `with_*` methods return copies.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: Names this event type was stored under before a rename: the registry resolves them to
    #: the class, and reads return such rows as the class (see docs/evolution.md).
    renamed_from: ClassVar[tuple[str, ...]] = ()

    def __init__(self, /, **data: Any) -> None:
        self.__pydantic_validator__.validate_python(data, self_instance=self)
        # pydantic gives every instance its own set of explicitly given field names (~700 bytes
        # for a typical event). Events built with the same keywords share one equal set instead;
        # it is never mutated in place (frozen model; copies get their own set).
        key = tuple(data)
        shared = _SHARED_FIELD_SETS.get(key)
        if shared is None:
            shared = _SHARED_FIELD_SETS.setdefault(key, self.__pydantic_fields_set__)
        _object_setattr(self, "__pydantic_fields_set__", shared)

    # Without this pydantic would treat the override as a custom __init__ and call it from
    # model_validate/model_validate_json too, validating every decoded event twice.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    # Time-ordered (UUIDv7): cheap to index for the stores; see `eventsource._ids`.
    event_id: UUID = Field(default_factory=new_uuid7)
    event_type: str
    event_version: int = Field(default=1, ge=1)
    occurred_at: datetime = Field(default_factory=_utcnow)
    aggregate_id: UUID
    aggregate_type: str
    aggregate_version: int = Field(default=1, ge=1)
    tenant_id: UUID | None = None
    actor_id: str | None = None
    correlation_id: UUID = Field(default_factory=new_uuid4)
    causation_id: UUID | None = None
    metadata: JSON = Field(default_factory=dict)

    def with_metadata(self, **kw: Any) -> Self:
        """A copy whose metadata is this one's merged with `kw` (new keys win)."""
        return self.model_copy(update={"metadata": {**self.metadata, **kw}})

    def with_causation(self, event: DomainEvent) -> Self:
        """A copy caused by `event`: its id becomes our causation id, its correlation id ours."""
        return self.model_copy(
            update={"causation_id": event.event_id, "correlation_id": event.correlation_id}
        )

    def with_aggregate_version(self, version: int) -> Self:
        """A copy with another aggregate version."""
        return self.model_copy(update={"aggregate_version": version})

    def is_caused_by(self, event: DomainEvent) -> bool:
        """True if `event` caused this one."""
        return self.causation_id == event.event_id

    def is_correlated_with(self, event: DomainEvent) -> bool:
        """True if both events share a correlation id."""
        return self.correlation_id == event.correlation_id

    def to_dict(self) -> JSON:
        """All fields, JSON-ready (UUIDs and datetimes as strings)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: JSON) -> Self:
        """Validate `data` (e.g. a `to_dict()` result) into this class."""
        return cls.model_validate(data)

    def __str__(self) -> str:
        return (
            f"{self.event_type}(event_id={self.event_id}, aggregate_id={self.aggregate_id}, "
            f"version={self.aggregate_version})"
        )

    def __getattr__(self, name: str) -> Any:
        # `timestamp` is an alias of `occurred_at` only for classes without such a field; a
        # property would shadow a subclass field of that name, so this is a fallback.
        if name == "timestamp":
            return self.occurred_at
        return super().__getattr__(name)  # type: ignore[misc]
