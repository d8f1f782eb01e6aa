"""The opened-payload cache of personal data (issue 18, speed targets): a subject leaving the
key cache drops the payloads naming it, and only those, so one erasure does not make every
other warm read parse and decrypt again; and never a plaintext outlives its subject's keys."""

from __future__ import annotations

import time
from typing import Annotated
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from eventsource import DomainEvent, register_event
from eventsource.personal import InMemoryKeyStore, LocalKEK, Personal, PersonalData, SubjectId
from eventsource.personal.protection import _OpenedPayloads
from eventsource.stores.codec import decode_event, encode_payload
from extras import import_extra

import_extra("cryptography")  # sealing needs it: the core run skips this module


@register_event
class OpenedCustomer(DomainEvent):
    """One marked field, the customer's name."""

    customer: Annotated[str, SubjectId()]
    name: Annotated[str, Personal(replacement="[erased]")]
    event_type: str = "PersonalOpenedCustomer"
    aggregate_type: str = "X"


async def _written(personal: PersonalData, customer: str, name: str) -> str:
    event = OpenedCustomer(aggregate_id=uuid4(), customer=customer, name=name)
    keys = await personal.keys_for_events([event])
    assert keys is not None
    with keys.active():
        return encode_payload(event)


async def _read(personal: PersonalData, payload: str) -> OpenedCustomer:
    ring = await personal.keys_for_payloads([("PersonalOpenedCustomer", payload)], None)
    assert ring is not None
    with ring.active():
        found = decode_event("PersonalOpenedCustomer", payload, None)
    assert isinstance(found, OpenedCustomer)
    return found


def _kept(personal: PersonalData, payload: str) -> bool:
    return personal._opened.get(payload, payload, time.monotonic()) is not None


async def test_forgetting_one_subject_drops_its_opened_payloads_and_keeps_the_others() -> None:
    personal = PersonalData(InMemoryKeyStore(), LocalKEK(LocalKEK.generate()), cache_ttl=60)
    ann = await _written(personal, "c-ann", "Ann Example")
    bob = await _written(personal, "c-bob", "Bob Example")
    assert (await _read(personal, ann)).name == "Ann Example"
    assert (await _read(personal, bob)).name == "Bob Example"
    assert _kept(personal, ann)
    assert _kept(personal, bob)

    await personal.forget("c-ann")

    assert not _kept(personal, ann)
    assert _kept(personal, bob)  # another subject's erasure leaves it opened
    assert (await _read(personal, ann)).name == "[erased]"
    assert (await _read(personal, bob)).name == "Bob Example"


async def test_a_subject_pushed_out_of_the_key_cache_takes_its_opened_payloads_along() -> None:
    personal = PersonalData(
        InMemoryKeyStore(), LocalKEK(LocalKEK.generate()), cache_size=1, cache_ttl=60
    )
    ann = await _written(personal, "c-ann", "Ann Example")
    await _read(personal, ann)
    assert _kept(personal, ann)
    bob = await _written(personal, "c-bob", "Bob Example")  # Ann's keys leave the cache
    assert not _kept(personal, ann)
    assert (await _read(personal, bob)).name == "Bob Example"
    assert (await _read(personal, ann)).name == "Ann Example"  # fetched again


_SUBJECTS = st.sampled_from(["a", "b", "c", "d"])
_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"), st.sampled_from(["p1", "p2", "p3", "p4", "p5"]),
            st.lists(_SUBJECTS, min_size=1, max_size=2).map(tuple),
        ),
        st.tuples(st.just("drop"), _SUBJECTS),
        st.tuples(st.just("clear")),
    ),
    max_size=40,
)


@given(size=st.integers(1, 4), operations=_OPERATIONS)
def test_opened_payloads_follow_the_model_of_a_bounded_map_dropped_by_subject(
    size: int, operations: list[tuple[object, ...]]
) -> None:
    cache = _OpenedPayloads(size)
    model: dict[str, tuple[str, ...]] = {}  # insertion order = storing order
    for operation in operations:
        if operation[0] == "put":
            payload = str(operation[1])
            subjects = tuple(str(s) for s in operation[2])  # type: ignore[attr-defined]
            cache.put(payload, payload, subjects, float("inf"), ({"payload": payload}, frozenset()))
            model.pop(payload, None)
            model[payload] = subjects
            while len(model) > size:
                del model[next(iter(model))]
        elif operation[0] == "drop":
            generation = cache.generation
            cache.drop(str(operation[1]))
            assert cache.generation > generation
            model = {p: s for p, s in model.items() if operation[1] not in s}
        else:
            cache.invalidate()
            model.clear()
        for payload in ("p1", "p2", "p3", "p4", "p5"):
            found = cache.get(payload, payload, 0.0)
            assert (found is not None) == (payload in model)
            if found is not None:
                assert found[0] == {"payload": payload}
        assert {s for subjects in model.values() for s in subjects} == set(cache._of)


def test_an_opened_payload_found_by_event_id_is_served_only_for_the_same_text() -> None:
    cache = _OpenedPayloads(10)
    event_id = uuid4()
    cache.put(event_id, '{"name":"pii:1:k:old"}', ("c-1",), float("inf"), ({"n": 1}, frozenset()))
    assert cache.get(event_id, '{"name":"pii:1:k:old"}', 0.0) == ({"n": 1}, frozenset())
    assert cache.get(event_id, '{"name":"pii:1:k:altered"}', 0.0) is None  # row changed
    assert cache.get(event_id, '{"name":"pii:1:k:old"}', float("inf")) is None  # keys expired
