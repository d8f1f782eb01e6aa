"""Key stores: where the wrapped data keys of data subjects, and their erasures, are kept.

A `KeyStore` keeps one wrapped data key per (subject, group) and a record of every erasure.
`forget` deletes keys and records the erasure in one transaction; a forgotten subject gets no
new key until `enrol` (keys are never silently re-created). `InMemoryKeyStore` is for tests;
`SQLiteKeyStore` and `PostgreSQLKeyStore` (`eventsource.personal.sqlite` / `.postgresql`)
share `SQLKeyStore` and the statements of `eventsource._sql.personal_keys`.
"""

from __future__ import annotations

import base64
import json
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from eventsource._sql import personal_keys as sql
from eventsource.exceptions import UnknownSubjectError

__all__ = [
    "ALL_GROUPS",
    "InMemoryKeyStore",
    "KeyStore",
    "SQLKeyStore",
    "StoredKey",
    "SubjectRecord",
]

ALL_GROUPS = sql.ALL_GROUPS


@dataclass(frozen=True)
class StoredKey:
    """One wrapped data key."""

    subject_id: str
    group: str
    key_id: str
    wrapped: bytes
    kek_id: str


@dataclass
class SubjectRecord:
    """What a key store holds about one subject: its keys, its erased groups (`*`: all) still
    blocked, and every group ever erased."""

    keys: list[StoredKey] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    erased: set[str] = field(default_factory=set)


@runtime_checkable
class KeyStore(Protocol):
    """Storage of wrapped data keys (see the module docstring)."""

    async def fetch(self, subjects: Collection[str]) -> dict[str, SubjectRecord]:
        """The records of those subjects the store knows, in one query."""

    async def create(self, keys: Sequence[StoredKey]) -> None:
        """Store new keys, skipping any whose (subject, group) has a key or is erased."""

    async def forget(self, subject_id: str, group: str = ALL_GROUPS) -> None:
        """In one transaction: delete the subject's keys (of `group`, or all) and record the
        erasure; `UnknownSubjectError` if the store never saw the subject."""

    async def enrol(self, subject_id: str) -> None:
        """Allow new keys for a forgotten subject; `UnknownSubjectError` if never seen."""

    async def wrapped_keys(self) -> list[StoredKey]:
        """Every stored key (for KEK rotation)."""

    async def rewrap(self, keys: Sequence[StoredKey]) -> None:
        """Replace the wrapped form and KEK id of these keys (by key id), in one transaction."""

    async def watch(self, evict: Callable[[str], None]) -> bool:
        """Call `evict(subject_id)` whenever another process forgets or enrols a subject; False
        when the store cannot tell (caches then rely on their time-to-live)."""

    async def close(self) -> None:
        """Release connections."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class InMemoryKeyStore:
    """Keys in a dict, for tests and single-process tools."""

    def __init__(self) -> None:
        self._records: dict[str, SubjectRecord] = {}

    async def fetch(self, subjects: Collection[str]) -> dict[str, SubjectRecord]:
        return {
            s: SubjectRecord(list(r.keys), set(r.blocked), set(r.erased))
            for s in subjects
            if (r := self._records.get(s)) is not None
        }

    async def create(self, keys: Sequence[StoredKey]) -> None:
        for key in keys:
            record = self._records.setdefault(key.subject_id, SubjectRecord())
            if record.blocked & {key.group, ALL_GROUPS}:
                continue
            if all(k.group != key.group for k in record.keys):
                record.keys.append(key)

    async def forget(self, subject_id: str, group: str = ALL_GROUPS) -> None:
        record = self._records.get(subject_id)
        if record is None:
            raise UnknownSubjectError(subject_id)
        record.keys = [k for k in record.keys if group not in (ALL_GROUPS, k.group)]
        record.blocked.add(group)
        record.erased.add(group)

    async def enrol(self, subject_id: str) -> None:
        record = self._records.get(subject_id)
        if record is None:
            raise UnknownSubjectError(subject_id)
        record.blocked.clear()

    async def wrapped_keys(self) -> list[StoredKey]:
        return [key for record in self._records.values() for key in record.keys]

    async def rewrap(self, keys: Sequence[StoredKey]) -> None:
        new = {key.key_id: key for key in keys}
        for record in self._records.values():
            record.keys = [new.get(k.key_id, k) for k in record.keys]

    async def watch(self, evict: Callable[[str], None]) -> bool:
        del evict
        return True  # one process: `PersonalData` evicts its own cache on forget

    async def close(self) -> None:
        return None


class Transaction(Protocol):
    """One open transaction of a SQL key store."""

    async def rows(self, statement: str, params: dict[str, Any]) -> list[Sequence[Any]]: ...

    async def run(self, statement: str, params: dict[str, Any]) -> None: ...


class SQLKeyStore:
    """The key store logic over SQL, written once; a backend opens transactions."""

    dialect = "sqlite"

    @abstractmethod
    def _transaction(self, write: bool = True) -> AbstractAsyncContextManager[Transaction]:
        """A transaction (tables created on first use), committed when the block ends."""

    async def _notify(self, tx: Transaction, subject_id: str) -> None:
        """Tell other processes (PostgreSQL: NOTIFY, sent at commit)."""
        del tx, subject_id

    async def fetch(self, subjects: Collection[str]) -> dict[str, SubjectRecord]:
        """The records of the subjects the store knows, in one query."""
        if not subjects:
            return {}
        async with self._transaction(write=False) as tx:
            subjects_json = json.dumps(list(subjects))
            rows = await tx.rows(sql.fetch_sql(self.dialect), {"subjects": subjects_json})
        found: dict[str, SubjectRecord] = {}
        for subject, group, key_id, wrapped, kek_id, blocked in rows:
            record = found.setdefault(subject, SubjectRecord())
            if key_id is not None:
                record.keys.append(
                    StoredKey(subject, group, key_id, base64.b64decode(wrapped), kek_id)
                )
            else:
                record.erased.add(group)
                if int(blocked):
                    record.blocked.add(group)
        return found

    async def create(self, keys: Sequence[StoredKey]) -> None:
        """Insert the keys, each unless its (subject, group) has one or is erased."""
        now = _now()
        async with self._transaction() as tx:
            for key in keys:
                await tx.run(sql.CREATE_KEY, {
                    "subject_id": key.subject_id, "key_group": key.group, "key_id": key.key_id,
                    "wrapped_key": base64.b64encode(key.wrapped).decode(), "kek_id": key.kek_id,
                    "created_at": now,
                })

    async def forget(self, subject_id: str, group: str = ALL_GROUPS) -> None:
        """Delete keys and record the erasure, in one transaction."""
        params = {"subject_id": subject_id, "key_group": group, "now": _now()}
        async with self._transaction() as tx:
            await self._known(tx, subject_id)
            await tx.run(sql.FORGET_DELETE, params)
            await tx.run(sql.FORGET_RECORD, params)
            await self._notify(tx, subject_id)

    async def enrol(self, subject_id: str) -> None:
        """Lift the subject's erasures, so new keys may be made."""
        async with self._transaction() as tx:
            await self._known(tx, subject_id)
            await tx.run(sql.ENROL, {"subject_id": subject_id, "now": _now()})
            await self._notify(tx, subject_id)

    async def _known(self, tx: Transaction, subject_id: str) -> None:
        [(count,)] = await tx.rows(sql.KNOWN, {"subject_id": subject_id})
        if not count:
            raise UnknownSubjectError(subject_id)

    async def wrapped_keys(self) -> list[StoredKey]:
        """Every stored key."""
        async with self._transaction(write=False) as tx:
            rows = await tx.rows(sql.WRAPPED_KEYS, {})
        return [StoredKey(s, g, k, base64.b64decode(w), e) for s, g, k, w, e in rows]

    async def rewrap(self, keys: Sequence[StoredKey]) -> None:
        """New wrapped forms, in one transaction."""
        async with self._transaction() as tx:
            for key in keys:
                await tx.run(sql.REWRAP, {
                    "key_id": key.key_id, "kek_id": key.kek_id,
                    "wrapped_key": base64.b64encode(key.wrapped).decode(),
                })
