"""Marking the personal data of an event: `typing.Annotated` markers and each class's plan.

    class CustomerRegistered(DomainEvent):
        customer_id: Annotated[str, SubjectId()]
        name: Annotated[str, Personal(replacement="[erased]")]
        street: Annotated[str | None, Personal(group="address")]

`SubjectId` marks the field holding a data subject's id (give each a name when an event
concerns several subjects); `Personal` marks a field as that subject's data, in a `group` whose
key can be forgotten on its own, with the `replacement` reads return once it is erased (None
for a field that accepts None, else required). `plan_of` reads the markers once per class and
caches the answer, so a class without any costs one dictionary lookup per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from eventsource.exceptions import PersonalDataDeclarationError

__all__ = ["Personal", "PersonalField", "PersonalPlan", "SubjectId", "erased_fields", "plan_of"]

_UNSET: Any = object()
_ERASED_KEY = "_eventsource_erased"


@dataclass(frozen=True)
class SubjectId:
    """Marks the field holding a data subject's id; `name` tells several subjects apart."""

    name: str = "subject"


@dataclass(frozen=True)
class Personal:
    """Marks a field as personal data of the subject `subject` (the only one when None).

    `group` keys the field separately (forget a subject's address but keep its name);
    `replacement` is what reads return after erasure (default: None, if the field accepts it).
    """

    subject: str | None = None
    group: str = "default"
    replacement: Any = _UNSET


@dataclass(frozen=True)
class PersonalField:
    """One marked field of a class, as its plan uses it."""

    key: str  # the field's key in the JSON dump
    attribute: str  # its attribute name
    subject_key: str  # the JSON key of its subject id field
    subject_attribute: str  # and that field's attribute name
    group: str
    replacement: Any  # JSON form of the replacement value


@dataclass(frozen=True)
class PersonalPlan:
    """A class's marked fields; `subject_attributes` name its subject id fields."""

    fields: tuple[PersonalField, ...]
    subject_attributes: tuple[str, ...]
    subject_keys: tuple[str, ...]  # their keys in the JSON dump


_plans: dict[type, PersonalPlan | None] = {}


def plan_of(cls: type) -> PersonalPlan | None:
    """The class's plan, None when nothing in it is marked; `PersonalDataDeclarationError`
    naming the field when the markers contradict each other. Cached per class."""
    try:
        return _plans[cls]
    except KeyError:
        plan = _plans[cls] = _read_plan(cls) if issubclass(cls, BaseModel) else None
        return plan


def _read_plan(cls: type[BaseModel]) -> PersonalPlan | None:
    subjects: dict[str, tuple[str, str]] = {}  # subject name -> (JSON key, attribute)
    marked: list[tuple[str, str, Personal, Any]] = []
    for name, info in cls.model_fields.items():
        key = info.serialization_alias or info.alias or name
        for marker in info.metadata:
            if isinstance(marker, SubjectId):
                if marker.name in subjects:
                    raise PersonalDataDeclarationError(
                        f"{cls.__qualname__}: two fields are subject id {marker.name!r} "
                        f"({subjects[marker.name][1]!r} and {name!r}); name them "
                        "SubjectId('...')"
                    )
                subjects[marker.name] = (key, name)
            elif isinstance(marker, Personal):
                marked.append((name, key, marker, info.annotation))
    if not marked:
        return None
    fields = tuple(_field(cls, subjects, *entry) for entry in marked)
    return PersonalPlan(
        fields,
        tuple(attribute for _, attribute in subjects.values()),
        tuple(key for key, _ in subjects.values()),
    )


def _field(
    cls: type,
    subjects: dict[str, tuple[str, str]],
    name: str,
    key: str,
    marker: Personal,
    annotation: Any,
) -> PersonalField:
    where = f"{cls.__qualname__}.{name}"
    if not subjects:
        raise PersonalDataDeclarationError(
            f"{where} is marked Personal but {cls.__qualname__} has no field marked SubjectId: "
            "whose data is it?"
        )
    if marker.subject is None:
        if len(subjects) > 1:
            raise PersonalDataDeclarationError(
                f"{where}: {cls.__qualname__} has subjects {sorted(subjects)}; say whose data "
                "it is with Personal(subject=...)"
            )
        subject = next(iter(subjects.values()))
    elif marker.subject in subjects:
        subject = subjects[marker.subject]
    else:
        raise PersonalDataDeclarationError(
            f"{where} names subject {marker.subject!r}, but {cls.__qualname__} has only "
            f"{sorted(subjects)}"
        )
    if not marker.group or not isinstance(marker.group, str):
        raise PersonalDataDeclarationError(f"{where}: the group must be a non-empty str")
    replacement = _replacement(where, marker, annotation)
    return PersonalField(key, name, subject[0], subject[1], marker.group, replacement)


def _replacement(where: str, marker: Personal, annotation: Any) -> Any:
    """The replacement's JSON form, checked against the field's type."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    value = None if marker.replacement is _UNSET else marker.replacement
    try:
        return adapter.dump_python(adapter.validate_python(value, strict=True), mode="json")
    except ValidationError as exc:
        if marker.replacement is _UNSET:
            raise PersonalDataDeclarationError(
                f"{where} cannot hold None after erasure: give Personal(replacement=...)"
            ) from exc
        raise PersonalDataDeclarationError(
            f"{where}: replacement {marker.replacement!r} is not a valid value of the field "
            f"({exc.errors()[0]['msg']})"
        ) from exc


def erased_fields(event: BaseModel) -> frozenset[str]:
    """The names of the event's fields that read as their replacement because their subject
    was forgotten (empty for an event read intact)."""
    private = getattr(event, "__pydantic_private__", None)
    if not private:
        return frozenset()
    found = private.get(_ERASED_KEY)
    return found if isinstance(found, frozenset) else frozenset()


def mark_erased(event: BaseModel, keys: frozenset[str]) -> None:
    """Record on a just-decoded event which fields were erased (see `erased_fields`)."""
    private = getattr(event, "__pydantic_private__", None)
    merged = {**(private or {}), _ERASED_KEY: keys}
    object.__setattr__(event, "__pydantic_private__", merged)
