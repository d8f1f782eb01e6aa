"""Personal data in events: mark fields, encrypt them per data subject, forget a subject.

See docs/personal-data.md. Mark fields with `SubjectId` and `Personal` (`typing.Annotated`),
attach a `PersonalData` (a key store and a key-encryption key) to the event store, and every
append encrypts them; `PersonalData.forget(subject)` deletes the subject's keys, after which
reads return the declared replacement values (`erased_fields(event)` names them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import lazy_attributes
from eventsource.personal.cipher import KeyEncryptionKey, LocalKEK
from eventsource.personal.keys import InMemoryKeyStore, KeyStore, SQLKeyStore, StoredKey
from eventsource.personal.markers import Personal, SubjectId, erased_fields, plan_of
from eventsource.personal.protection import (
    KeyRing,
    PersonalData,
    PersonalDataErased,
    subject_stream_id,
)

if TYPE_CHECKING:
    from eventsource.personal.postgresql import PostgreSQLKeyStore as PostgreSQLKeyStore
    from eventsource.personal.snapshots import PersonalSnapshotStore as PersonalSnapshotStore
    from eventsource.personal.sqlite import SQLiteKeyStore as SQLiteKeyStore
else:  # the SQL key stores load their drivers on first use
    __getattr__ = lazy_attributes(__name__, {
        "PostgreSQLKeyStore": "eventsource.personal.postgresql",
        "SQLiteKeyStore": "eventsource.personal.sqlite",
        "PersonalSnapshotStore": "eventsource.personal.snapshots",
    })

__all__ = [
    "InMemoryKeyStore",
    "KeyEncryptionKey",
    "KeyRing",
    "KeyStore",
    "LocalKEK",
    "Personal",
    "PersonalData",
    "PersonalDataErased",
    "PersonalSnapshotStore",
    "PostgreSQLKeyStore",
    "SQLKeyStore",
    "SQLiteKeyStore",
    "StoredKey",
    "SubjectId",
    "erased_fields",
    "plan_of",
    "subject_stream_id",
]
