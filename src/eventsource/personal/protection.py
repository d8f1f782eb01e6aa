"""`PersonalData`: the key cache, batch key fetching, `forget`, `enrol` and KEK rotation.

A store with a `PersonalData` attached (`personal.attach(store)`) fetches, before encoding a
batch or decoding a page, the keys of every subject in it with one key-store query (none when
the cache holds them all), then encrypts or decrypts synchronously in the codec. The cache is
bounded (`cache_size` subjects, least recently used out) and each entry lives `cache_ttl`
seconds; a key store that pushes erasures (PostgreSQL's NOTIFY) evicts entries at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from pydantic_core import from_json

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, register_event, resolve_event_class
from eventsource.exceptions import (
    EventTypeNotFoundError,
    KeyStoreUnavailableError,
    PersonalDataIntegrityError,
    SubjectErasedError,
)
from eventsource.personal import cipher
from eventsource.personal._hook import Opened, activated
from eventsource.personal.keys import ALL_GROUPS, KeyStore, StoredKey, SubjectRecord
from eventsource.personal.markers import PersonalPlan, erased_fields, plan_of

__all__ = ["KeyRing", "PersonalData", "PersonalDataErased", "subject_stream_id"]


@register_event
class PersonalDataErased(DomainEvent):
    """Appended by `PersonalData.forget`: projections handle it to delete rows derived from the
    subject's data. Its stream is `subject_stream_id(subject_id)`, aggregate type
    `PersonalData`."""

    event_type: str = "PersonalDataErased"
    aggregate_type: str = "PersonalData"
    subject_id: str
    group: str = ALL_GROUPS


def subject_stream_id(subject_id: str) -> UUID:
    """The aggregate id of a subject's `PersonalDataErased` events."""
    return uuid5(NAMESPACE_URL, f"eventsource:personal-data:{subject_id}")


@dataclass
class _Entry:
    """A cached subject: its keys by group, erased groups still blocked, groups ever erased."""

    deadline: float
    keys: dict[str, tuple[str, Any]]  # group -> (key id, AESGCM)
    blocked: frozenset[str]
    erased: frozenset[str]
    # (token, associated data) -> plaintext, once authenticated in that very place; dropped
    # with the entry (erasure, time-to-live, eviction), so it never outlives the key.
    opened: dict[tuple[str, bytes], bytes] = dataclass_field(default_factory=dict)


_OPENED_MAX = 4096  # plaintexts remembered per subject (then forgotten and relearnt)


class KeyRing:
    """The keys of one batch or page (see `eventsource.personal._hook.FieldKeys`)."""

    __slots__ = ("_by_id", "_entries", "_opened", "_owner", "_parsed")

    def __init__(
        self,
        entries: dict[str, _Entry],
        parsed: dict[int, dict[str, Any]],
        owner: _OpenedPayloads | None = None,
        opened: dict[int, Opened] | None = None,
        by_id: bool = False,
    ) -> None:
        self._entries = entries
        self._parsed = parsed
        self._owner = owner
        self._opened = opened or {}
        self._by_id = by_id  # the page's rows had event ids: opened payloads are found by them

    def active(self) -> Any:
        """A context manager making these keys the codec's."""
        return activated(self)

    def seal(self, subject: str, group: str, plaintext: bytes, associated: bytes) -> str:
        """Encrypt under the subject's key of `group` (fetched for this batch)."""
        entry = self._entries.get(subject)
        current = entry.keys.get(group) if entry is not None else None
        if current is None:
            if entry is not None and entry.blocked & {group, ALL_GROUPS}:
                raise SubjectErasedError(subject)
            raise KeyStoreUnavailableError(
                f"the keys of subject {subject!r} were not fetched for this batch (use "
                "PersonalData.keys_for_events)"
            )
        return cipher.seal(current[1], current[0], plaintext, associated)

    def open(self, subject: str, group: str, token: str, associated: bytes) -> bytes | None:
        """Decrypt, or None when the key is gone because the subject (or group) was erased."""
        entry = self._entries.get(subject)
        if entry is not None:
            known = entry.opened.get((token, associated))
            if known is not None:
                return known
        key_id, body = cipher.token_parts(token)
        current = entry.keys.get(group) if entry is not None else None
        if entry is not None and current is not None and current[0] == key_id:
            plaintext = cipher.open_field(current[1], body, associated)
            if len(entry.opened) >= _OPENED_MAX:
                entry.opened.clear()
            entry.opened[(token, associated)] = plaintext
            return plaintext
        if entry is not None and entry.erased & {group, ALL_GROUPS}:
            return None
        raise PersonalDataIntegrityError(
            f"subject {subject!r} has no key {key_id!r} and was never forgotten (the "
            "ciphertext was moved from another subject or group, or the key store lost it)"
        )

    def parsed(self, payload: object) -> dict[str, Any] | None:
        """The payload parsed while fetching the keys, handed out once."""
        return self._parsed.pop(id(payload), None)

    def opened(self, payload: object) -> Opened | None:
        """The payload as opened by an earlier read, still valid (see `_OpenedPayloads`)."""
        return self._opened.pop(id(payload), None) if self._opened else None

    def remember(
        self, payload: object, event_id: object, subjects: Iterable[str], opened: Opened
    ) -> None:
        """Keep an opened payload for later reads, as long as its subjects' keys are cached."""
        if self._owner is not None and isinstance(payload, str):
            named = tuple(subjects)
            deadline = min(
                (e.deadline for s in named if (e := self._entries.get(s)) is not None),
                default=0.0,
            )
            key = event_id if self._by_id and event_id is not None else payload
            self._owner.put(key, payload, named, deadline, opened)


class _OpenedPayloads:
    """Payloads already opened, so a warm read skips parsing and decrypting them again.

    Entries are found by event id (a short key to hash; the payload must still be the same
    text) or, for rows without one, by the payload itself. An entry is valid until the
    earliest time-to-live of its subjects' keys, and is dropped as soon as one of its subjects
    leaves the key cache (erasure, enrolment, NOTIFY, least recently used out: `drop`), so it
    holds plaintext no longer than the keys that decrypted it; the other subjects' entries
    stay. Every drop bumps `generation`: a page whose keys were fetched across one keeps
    nothing. Bounded: least recently stored out.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.generation = 0
        # key -> (deadline, (data, erased fields), its subjects, the payload)
        self.items: OrderedDict[object, tuple[float, Opened, tuple[str, ...], str]] = OrderedDict()
        self._of: dict[str, set[object]] = {}  # subject -> the keys of the payloads naming it

    def get(self, key: object, payload: str, now: float) -> Opened | None:
        found = self.items.get(key)
        if found is None or found[0] <= now or found[3] != payload:
            return None
        return found[1]

    def put(
        self,
        key: object,
        payload: str,
        subjects: tuple[str, ...],
        deadline: float,
        opened: Opened,
    ) -> None:
        if self.size <= 0:
            return
        items = self.items
        old = items.pop(key, None)
        if old is not None:
            self._unlink(key, old[2])
        items[key] = (deadline, opened, subjects, payload)
        of = self._of
        for subject in subjects:
            held = of.get(subject)
            if held is None:
                of[subject] = {key}
            else:
                held.add(key)
        if len(items) > self.size:
            gone, item = items.popitem(last=False)
            self._unlink(gone, item[2])

    def _unlink(self, key: object, subjects: tuple[str, ...]) -> None:
        for subject in subjects:
            held = self._of.get(subject)
            if held is not None:
                held.discard(key)
                if not held:
                    del self._of[subject]

    def drop(self, subject: str) -> None:
        """Forget every payload naming `subject` (it left the key cache)."""
        self.generation += 1
        for key in self._of.pop(subject, ()):
            item = self.items.pop(key, None)
            if item is not None:
                self._unlink(key, item[2])

    def invalidate(self) -> None:
        self.generation += 1
        self.items.clear()
        self._of.clear()


class _Layout(Protocol):
    @property
    def event_type(self) -> int: ...

    @property
    def payload(self) -> int: ...


class PersonalData:
    """Protects the fields of events marked as personal data (docs/personal-data.md).

    Args:
        key_store: where wrapped data keys live (`SQLiteKeyStore`, `PostgreSQLKeyStore`, ...).
        kek: the key-encryption key wrapping them (`LocalKEK`, or a KMS-backed one).
        cache_size: subjects whose unwrapped keys are kept in memory.
        cache_ttl: seconds a cached subject is trusted; the bound on how late another process
            sees an erasure when the key store cannot push them (SQLite).
        opened_payloads: stored payloads kept opened for warm reads (0: none); dropped whenever
            a subject leaves the key cache.
    """

    def __init__(
        self,
        key_store: KeyStore,
        kek: cipher.KeyEncryptionKey,
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 1.0,
        opened_payloads: int = 10_000,
    ) -> None:
        if cache_size < 1 or cache_ttl <= 0:
            raise ValueError("cache_size must be >= 1 and cache_ttl > 0")
        self._store = key_store
        self._kek = kek
        self._size = cache_size
        self._ttl = cache_ttl
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._opened = _OpenedPayloads(opened_payloads)
        self._watching = False

    @property
    def key_store(self) -> KeyStore:
        """Where the wrapped keys are kept."""
        return self._store

    def attach(self, store: Any) -> None:
        """Make `store` (a bundled event store) encrypt and decrypt marked fields with these
        keys on every append and read."""
        store._personal = self

    def evict(self, subject_id: str) -> None:
        """Drop a subject from the cache (called on erasure notifications)."""
        self._cache.pop(subject_id, None)
        self._opened.drop(subject_id)

    # -- fetching keys ------------------------------------------------------------------------

    async def _entries(self, subjects: Collection[str]) -> dict[str, _Entry]:
        if not self._watching:
            self._watching = True
            await self._store.watch(self.evict)
        now = time.monotonic()
        found: dict[str, _Entry] = {}
        missing: list[str] = []
        cache = self._cache
        for subject in subjects:
            entry = cache.get(subject)
            if entry is not None and entry.deadline > now:
                cache.move_to_end(subject)
                found[subject] = entry
            else:
                missing.append(subject)
        if missing:
            records = await self._store.fetch(missing)
            for subject in missing:
                found[subject] = self._remember(subject, records.get(subject), now)
        return found

    def _remember(self, subject: str, record: SubjectRecord | None, now: float) -> _Entry:
        record = record or SubjectRecord()
        keys = {
            key.group: (key.key_id, cipher.data_cipher(self._kek_for(key).unwrap(key.wrapped)))
            for key in record.keys
        }
        entry = _Entry(now + self._ttl, keys, frozenset(record.blocked), frozenset(record.erased))
        self._cache[subject] = entry
        self._cache.move_to_end(subject)
        while len(self._cache) > self._size:
            gone, _ = self._cache.popitem(last=False)
            self._opened.drop(gone)
        return entry

    def _kek_for(self, key: StoredKey) -> cipher.KeyEncryptionKey:
        if key.kek_id != self._kek.key_id:
            raise PersonalDataIntegrityError(
                f"the data key of subject {key.subject_id!r} is wrapped by KEK {key.kek_id!r}, "
                f"not by {self._kek.key_id!r}: finish the rotation (PersonalData.rotate_kek)"
            )
        return self._kek

    async def keys_for_events(self, events: Sequence[DomainEvent]) -> KeyRing | None:
        """The keys a batch needs, creating those of new subjects; None when no event has
        marked fields. `SubjectErasedError` for a forgotten subject, before any write."""
        needs: dict[str, set[str]] = {}
        marked = False
        for event in events:
            plan = plan_of(type(event))
            if plan is None:
                continue
            marked = True
            erased = erased_fields(event)
            values = event.__dict__  # the fields' values: no attribute lookup per field
            for field in plan.fields:
                subject = values.get(field.subject_attribute)
                if subject is None or field.key in erased:
                    continue
                if values.get(field.attribute) is not None:
                    needs.setdefault(str(subject), set()).add(field.group)
        if not marked:
            return None
        return await self.keys_to_seal(needs)

    async def keys_to_seal(self, needs: dict[str, set[str]]) -> KeyRing:
        """The keys of these subjects' groups, creating missing ones (one query to fetch, two
        more only for new keys); `SubjectErasedError` for a forgotten subject or group."""
        entries = await self._entries(needs)
        new: list[StoredKey] = []
        for subject, groups in needs.items():
            entry = entries[subject]
            if entry.keys.keys() >= groups:
                continue  # the usual case: every key exists and is cached
            for group in sorted(groups - entry.keys.keys()):
                if entry.blocked & {group, ALL_GROUPS}:
                    raise SubjectErasedError(subject)
                wrapped = self._kek.wrap(cipher.new_data_key())
                new.append(StoredKey(subject, group, uuid4().hex, wrapped, self._kek.key_id))
        if new:
            await self._store.create(new)
            fresh = {key.subject_id for key in new}
            records = await self._store.fetch(fresh)
            now = time.monotonic()
            for subject in fresh:
                entries[subject] = self._remember(subject, records.get(subject), now)
                if needs[subject] - entries[subject].keys.keys():
                    raise SubjectErasedError(subject)  # forgotten meanwhile
        return KeyRing(entries, {})

    async def keys_for_subjects(self, subjects: Collection[str]) -> KeyRing:
        """The keys to open these subjects' fields (one query at most)."""
        return KeyRing(await self._entries(subjects), {})

    async def keys_for_rows(
        self, rows: Iterable[Sequence[Any]], layout: _Layout, registry: EventRegistry | None
    ) -> KeyRing | None:
        """The keys a page of stored rows needs (None when no row has marked fields)."""
        t, p = layout.event_type, layout.payload
        i: int = getattr(layout, "event_id", -1)  # pairs (bus messages) have none
        plans: dict[str, PersonalPlan | None] = {}
        parsed: dict[int, dict[str, Any]] = {}
        opened: dict[int, Opened] = {}
        subjects: set[str] = set()
        known = self._opened
        stored = known.items  # `known.get`, inlined: this loop runs once per row of a page
        now = time.monotonic()
        for row in rows:
            event_type = row[t]
            try:
                plan = plans[event_type]
            except KeyError:
                plan = plans[event_type] = _plan_of_type(event_type, registry)
            if plan is not None:
                payload = row[p]
                hit = None
                if type(payload) is str:
                    key = row[i] if i >= 0 else None
                    hit = stored.get(payload if key is None else key)
                if hit is not None and hit[0] > now and hit[3] == payload:
                    opened[id(payload)] = hit[1]
                    continue
                data = _parsed(payload)
                if data is not None:
                    parsed[id(payload)] = data
                    for key in plan.subject_keys:
                        subject = data.get(key)
                        if subject is not None:
                            subjects.add(str(subject))
        if not plans or not any(plans.values()):
            return None
        generation = known.generation
        entries = await self._entries(subjects)
        # An eviction while fetching: what this page opens is not kept.
        owner = known if known.generation == generation else None
        return KeyRing(entries, parsed, owner, opened, i >= 0)

    async def keys_for_payloads(
        self, payloads: Iterable[tuple[str, Any]], registry: EventRegistry | None
    ) -> KeyRing | None:
        """`keys_for_rows` for `(event_type, payload)` pairs (outbox rows, bus messages)."""
        return await self.keys_for_rows(list(payloads), _PAIR, registry)

    # -- erasure, enrolment, rotation -------------------------------------------------------------

    async def forget(
        self, subject_id: object, store: Any = None, *, group: str = ALL_GROUPS
    ) -> PersonalDataErased:
        """Erase a subject (or one `group` of its fields): its keys are deleted and the erasure
        recorded in one key-store transaction, then, with an event `store`, a
        `PersonalDataErased` event is appended for projections. `UnknownSubjectError` if the
        key store never saw the subject."""
        subject = str(subject_id)
        await self._store.forget(subject, group)
        self.evict(subject)
        erased = PersonalDataErased(
            aggregate_id=subject_stream_id(subject), subject_id=subject, group=group
        )
        if store is not None:
            await store.append_events(erased.aggregate_id, erased.aggregate_type, [erased], -1)
        return erased

    async def enrol(self, subject_id: object) -> None:
        """Let a forgotten subject have personal data again (under new keys: what was written
        before stays unreadable). `UnknownSubjectError` if never seen."""
        subject = str(subject_id)
        await self._store.enrol(subject)
        self.evict(subject)

    async def rotate_kek(self, new_kek: cipher.KeyEncryptionKey) -> int:
        """Rewrap every data key under `new_kek` (events are not touched); the number of keys.
        Processes still holding the old KEK must be given the new one."""
        keys = await self._store.wrapped_keys()
        rewrapped = [
            StoredKey(k.subject_id, k.group, k.key_id, new_kek.wrap(self._kek_for(k).unwrap(
                k.wrapped)), new_kek.key_id)
            for k in keys
            if k.kek_id != new_kek.key_id
        ]
        await self._store.rewrap(rewrapped)
        self._kek = new_kek
        self._cache.clear()
        self._opened.invalidate()
        return len(rewrapped)

    async def close(self) -> None:
        """Close the key store."""
        await self._store.close()


class _PairLayout:
    event_type = 0
    payload = 1


_PAIR = _PairLayout()


def _plan_of_type(event_type: str, registry: EventRegistry | None) -> PersonalPlan | None:
    try:
        return plan_of(resolve_event_class(event_type, registry))
    except EventTypeNotFoundError:
        return None  # the decoder reports it


def _parsed(payload: object) -> dict[str, Any] | None:
    """A stored payload as a dict (None if it is not one: the decoder reports it)."""
    if isinstance(payload, dict):
        return dict(payload)
    if not isinstance(payload, str | bytes):
        return None
    try:
        data = from_json(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
