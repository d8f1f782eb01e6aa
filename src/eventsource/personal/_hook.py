"""What the codec calls for personal data: seal marked fields on encode, open them on decode.

The codec is synchronous and keys live in a database, so an async caller first fetches the
keys a batch or page needs (one query, `PersonalData.keys_for_events` / `keys_for_rows`), then
makes them active (`FieldKeys.active()`) around the codec calls. With no keys active, a class
with marked fields is refused (`KeyStoreUnavailableError`): nothing is written in plaintext.
This module imports no cipher: the active keys do the cryptography.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json

from eventsource.exceptions import (
    CorruptEventError,
    KeyStoreUnavailableError,
    PersonalDataError,
    PersonalDataIntegrityError,
)
from eventsource.personal.markers import PersonalPlan, mark_erased, plan_of

__all__ = [
    "FieldKeys",
    "associated_data",
    "personal_decoder",
    "protect_payload",
    "reveal",
    "seal_fields",
]


Opened = tuple[dict[str, Any], frozenset[str]]  # a payload's fields opened, and those erased


class FieldKeys(Protocol):
    """The keys of one batch or page, made active around the codec calls."""

    def seal(self, subject: str, group: str, plaintext: bytes, associated: bytes) -> str:
        """The field's sealed text under the subject's current key of `group`."""

    def open(self, subject: str, group: str, token: str, associated: bytes) -> bytes | None:
        """The plaintext, or None when the key was erased; `PersonalDataIntegrityError` when
        the ciphertext fails authentication."""

    def parsed(self, payload: object) -> dict[str, Any] | None:
        """The payload already parsed while fetching the keys (each parse is used once)."""

    def opened(self, payload: object) -> Opened | None:
        """The payload as opened by an earlier read and still valid, or None."""

    def remember(
        self, payload: object, event_id: object, subjects: Iterable[str], opened: Opened
    ) -> None:
        """Keep an opened payload (of event `event_id`: None if unknown) for later reads,
        while its keys are cached."""


_active: ContextVar[FieldKeys | None] = ContextVar("eventsource_personal_keys", default=None)


class _Activated:
    """`activated`'s context manager: a class, not a generator, as every append enters one."""

    __slots__ = ("_keys", "_token")

    def __init__(self, keys: FieldKeys) -> None:
        self._keys = keys

    def __enter__(self) -> None:
        self._token = _active.set(self._keys)

    def __exit__(self, *exc_info: object) -> None:
        _active.reset(self._token)


def activated(keys: FieldKeys) -> AbstractContextManager[None]:
    """Make `keys` the ones the codec uses until the block ends."""
    return _Activated(keys)


def associated_data(tenant: object, subject: str, group: str, event_type: str, key: str) -> bytes:
    """What binds a ciphertext to its place (see `eventsource.personal.cipher`)."""
    return f"{tenant or ''}\x1f{subject}\x1f{group}\x1f{event_type}\x1f{key}".encode()


def _dumps(value: Any) -> str:
    return to_json(value).decode()


def _plaintext(value: Any) -> bytes:
    """A field's value as sealed: a str as its UTF-8 after `s`, anything else as JSON after `j`
    (most personal data is text, and this spares a JSON round trip)."""
    return b"s" + value.encode() if isinstance(value, str) else b"j" + to_json(value)


def _value(plaintext: bytes) -> Any:
    return plaintext[1:].decode() if plaintext[:1] == b"s" else from_json(plaintext[1:])


def protect_payload(
    plan: PersonalPlan, event_type: str, payload: str, erased: frozenset[str] = frozenset()
) -> str:
    """The event's JSON dump with each marked field sealed, but those of `erased` (read as
    their replacement: nothing personal is left); KeyStoreUnavailableError with no keys
    active, PersonalDataError for personal data without a subject id."""
    data = from_json(payload)
    seal_fields(plan, event_type, data, data.get("tenant_id"), erased)
    return _dumps(data)


def seal_fields(
    plan: PersonalPlan,
    event_type: str,
    data: dict[str, Any],
    tenant: object,
    erased: frozenset[str] = frozenset(),
) -> None:
    """Seal the marked fields of `data` (a JSON-mode dict) in place."""
    keys = _active.get()
    if keys is None:
        raise KeyStoreUnavailableError(
            f"{event_type} has personal data fields but no key store is at hand: attach a "
            "PersonalData to the store (nothing was written)"
        )
    for field in plan.fields:
        value = data.get(field.key)
        if value is None or field.key in erased:
            continue  # nothing to hide
        subject = data.get(field.subject_key)
        if subject is None:
            raise PersonalDataError(
                f"{event_type}.{field.key} holds personal data but subject id "
                f"{field.subject_key!r} is None (nothing was written)"
            )
        subject = str(subject)
        aad = associated_data(tenant, subject, field.group, event_type, field.key)
        data[field.key] = keys.seal(subject, field.group, _plaintext(value), aad)


def reveal(
    plan: PersonalPlan, event_type: str, payload: Any, event_id: object, tenant: object = None
) -> tuple[dict[str, Any], frozenset[str]]:
    """The payload as a dict with each sealed field opened, or replaced when its key was
    erased; and the keys of the replaced fields. The tenant is the payload's own unless
    given (snapshots)."""
    keys = _active.get()
    if keys is None:
        raise KeyStoreUnavailableError(
            f"event {event_id} ({event_type}) has encrypted personal data but no key store is "
            "at hand: attach a PersonalData to the store"
        )
    data = keys.parsed(payload)
    if data is None:
        data = dict(payload) if isinstance(payload, dict) else from_json(payload)
    if tenant is None:
        tenant = data.get("tenant_id")
    erased: list[str] = []
    for field in plan.fields:
        token = data.get(field.key)
        if not isinstance(token, str) or not token.startswith("pii:1:"):
            continue  # None, or written before the field was marked
        subject = str(data.get(field.subject_key))
        aad = associated_data(tenant, subject, field.group, event_type, field.key)
        try:
            plaintext = keys.open(subject, field.group, token, aad)
        except PersonalDataIntegrityError as exc:
            raise PersonalDataIntegrityError(
                f"event {event_id} ({event_type}) field {field.key!r}: {exc}"
            ) from exc
        if plaintext is None:
            data[field.key] = field.replacement
            erased.append(field.key)
        else:
            data[field.key] = _value(plaintext)
    return data, frozenset(erased)


def personal_decoder(
    cls: type[BaseModel], event_type: str, convert: Callable[[dict[str, Any]], Any] | None
) -> Callable[[Any, Any], Any] | None:
    """`(payload, event_id) -> event` for a class with marked fields (None for the others):
    fields opened, then validated; `convert` (the store's type converter) runs first."""
    plan = plan_of(cls)
    if plan is None:
        return None
    validate = cls.__pydantic_validator__.validate_python

    subject_keys = plan.subject_keys

    def decode(payload: Any, event_id: Any) -> Any:
        keys = _active.get()
        known = keys.opened(payload) if keys is not None else None
        if known is None:
            data, erased = reveal(plan, event_type, payload, event_id)
            assert keys is not None  # reveal refuses to run without keys
            subjects = [str(data.get(k)) for k in subject_keys]
            keys.remember(payload, event_id, subjects, (data, erased))
        else:
            data, erased = known
        try:
            event = validate(convert(dict(data)) if convert is not None else data)
        except (ValidationError, ValueError) as exc:
            raise CorruptEventError(event_id, event_type, str(exc)) from exc
        if erased:
            mark_erased(event, erased)
        return event

    return decode
