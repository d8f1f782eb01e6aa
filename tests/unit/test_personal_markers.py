"""Personal-data markers and the field cipher (issue 18, acceptance 3 and 6), without a database:
declaration errors at call time, sealing round trips, and the associated data binding a
ciphertext to its place."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsource import DomainEvent, register_event
from eventsource.exceptions import (
    KeyStoreUnavailableError,
    PersonalDataDeclarationError,
    PersonalDataError,
    PersonalDataIntegrityError,
    SubjectErasedError,
)
from eventsource.personal import (
    InMemoryKeyStore,
    LocalKEK,
    Personal,
    PersonalData,
    SubjectId,
    erased_fields,
    plan_of,
)
from eventsource.personal.cipher import data_cipher, new_data_key, open_field, seal, token_parts
from eventsource.stores.codec import decode_event, encode_payload
from extras import import_extra

import_extra("cryptography")  # sealing needs it: the core run skips this module


class NoSubject(DomainEvent):
    event_type: str = "NoSubject"
    aggregate_type: str = "X"
    name: Annotated[str, Personal(replacement="")]


class WrongReplacement(DomainEvent):
    event_type: str = "WrongReplacement"
    aggregate_type: str = "X"
    person: Annotated[str, SubjectId()]
    age: Annotated[int, Personal(replacement="unknown")]


class NoReplacement(DomainEvent):
    event_type: str = "NoReplacement"
    aggregate_type: str = "X"
    person: Annotated[str, SubjectId()]
    name: Annotated[str, Personal()]


class UnknownSubject(DomainEvent):
    event_type: str = "UnknownSubject"
    aggregate_type: str = "X"
    person: Annotated[str, SubjectId("buyer")]
    name: Annotated[str, Personal(subject="seller", replacement="")]


class Ambiguous(DomainEvent):
    event_type: str = "Ambiguous"
    aggregate_type: str = "X"
    buyer: Annotated[str, SubjectId("buyer")]
    seller: Annotated[str, SubjectId("seller")]
    name: Annotated[str, Personal(replacement="")]


class Plain(DomainEvent):
    event_type: str = "Plain"
    aggregate_type: str = "X"
    note: str = ""


@register_event
class Customer(DomainEvent):
    event_type: str = "PersonalCustomer"
    aggregate_type: str = "X"
    customer: Annotated[str, SubjectId()]
    name: Annotated[str, Personal(replacement="[erased]")]
    age: Annotated[int | None, Personal(group="details")] = None


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (NoSubject, "no field marked SubjectId"),
        (WrongReplacement, "replacement 'unknown' is not a valid value"),
        (NoReplacement, "cannot hold None after erasure"),
        (UnknownSubject, "names subject 'seller'"),
        (Ambiguous, "say whose data"),
    ],
)
def test_bad_declarations_are_refused_when_first_used(cls: type[DomainEvent], message: str) -> None:
    with pytest.raises(PersonalDataDeclarationError, match=message):
        plan_of(cls)
    event = cls.model_construct(aggregate_id=uuid4(), event_type=cls.__name__, aggregate_type="X")
    with pytest.raises(PersonalDataDeclarationError, match=message):
        encode_payload(event)  # the first append of such an event fails the same way


def test_a_class_without_markers_has_no_plan_and_encodes_as_before() -> None:
    assert plan_of(Plain) is None
    event = Plain(aggregate_id=uuid4(), note="hello")
    assert json.loads(encode_payload(event))["note"] == "hello"


def test_without_keys_a_marked_event_is_not_encoded() -> None:
    with pytest.raises(KeyStoreUnavailableError, match="nothing was written"):
        encode_payload(Customer(aggregate_id=uuid4(), customer="c", name="Ann"))


async def test_round_trip_forget_and_enrol_in_memory() -> None:
    personal = PersonalData(InMemoryKeyStore(), LocalKEK(LocalKEK.generate()))
    event = Customer(aggregate_id=uuid4(), customer="c-1", name="Ann Example", age=41)
    keys = await personal.keys_for_events([event])
    assert keys is not None
    with keys.active():
        payload = encode_payload(event)
    assert "Ann Example" not in payload
    assert '"age":41' not in payload
    reading = await personal.keys_for_payloads([("PersonalCustomer", payload)], None)
    assert reading is not None
    with reading.active():
        assert decode_event("PersonalCustomer", payload, None) == event
    await personal.forget("c-1", group="details")
    reading = await personal.keys_for_payloads([("PersonalCustomer", payload)], None)
    assert reading is not None
    with reading.active():
        partly = decode_event("PersonalCustomer", payload, None)
    assert isinstance(partly, Customer)
    assert (partly.name, partly.age) == ("Ann Example", None)
    with pytest.raises(SubjectErasedError):
        await personal.keys_for_events([event])
    await personal.enrol("c-1")
    assert await personal.keys_for_events([event]) is not None


async def test_personal_data_without_a_subject_id_is_refused() -> None:
    personal = PersonalData(InMemoryKeyStore(), LocalKEK(LocalKEK.generate()))
    fields: dict[str, Any] = {"customer": None, "name": "Ann", "age": None}
    event = Customer.model_construct(
        aggregate_id=uuid4(), event_type="PersonalCustomer", aggregate_type="X", **fields
    )
    keys = await personal.keys_for_events([event])
    assert keys is not None
    with keys.active(), pytest.raises(PersonalDataError, match="subject id"):
        encode_payload(event)


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(value=json_values, place=st.text(min_size=1), other=st.text(min_size=1))
def test_a_sealed_value_opens_only_in_its_own_place(value: Any, place: str, other: str) -> None:
    cipher = data_cipher(new_data_key())
    plaintext = json.dumps(value).encode()
    key_id, body = token_parts(seal(cipher, "k1", plaintext, place.encode()))
    assert key_id == "k1"
    assert json.loads(open_field(cipher, body, place.encode())) == value
    if other != place:
        with pytest.raises(PersonalDataIntegrityError, match="fails authentication"):
            open_field(cipher, body, other.encode())


def test_a_wrapped_key_opens_only_under_its_kek() -> None:
    kek, stranger = LocalKEK(LocalKEK.generate(), "a"), LocalKEK(LocalKEK.generate(), "a")
    key = new_data_key()
    assert kek.unwrap(kek.wrap(key)) == key
    with pytest.raises(PersonalDataIntegrityError, match="KEK 'a'"):
        stranger.unwrap(kek.wrap(key))


async def test_a_ciphertext_moved_to_another_tenant_does_not_open() -> None:
    personal = PersonalData(InMemoryKeyStore(), LocalKEK(LocalKEK.generate()))
    event = Customer(aggregate_id=uuid4(), customer="c-1", name="Ann", tenant_id=uuid4())
    keys = await personal.keys_for_events([event])
    assert keys is not None
    with keys.active():
        payload = encode_payload(event)
    moved = json.loads(payload)
    moved["tenant_id"] = str(uuid4())
    text = json.dumps(moved)
    reading = await personal.keys_for_payloads([("PersonalCustomer", text)], None)
    assert reading is not None
    with reading.active(), pytest.raises(PersonalDataIntegrityError, match="'name'"):
        decode_event("PersonalCustomer", text, None)


async def test_an_opened_payload_is_not_reused_after_an_erasure_or_its_keys_expiry() -> None:
    personal = PersonalData(InMemoryKeyStore(), LocalKEK(LocalKEK.generate()), cache_ttl=0.05)
    event = Customer(aggregate_id=uuid4(), customer="c-1", name="Ann Example")
    keys = await personal.keys_for_events([event])
    assert keys is not None
    with keys.active():
        payload = encode_payload(event)

    async def read() -> Customer:
        ring = await personal.keys_for_payloads([("PersonalCustomer", payload)], None)
        assert ring is not None
        with ring.active():
            found = decode_event("PersonalCustomer", payload, None)
        assert isinstance(found, Customer)
        return found

    assert (await read()).name == "Ann Example"
    assert (await read()).name == "Ann Example"  # from the opened payload
    await asyncio.sleep(0.06)  # the keys' time-to-live passes: the opened payload with it
    assert personal._opened.get(payload, payload, time.monotonic()) is None
    assert (await read()).name == "Ann Example"
    await personal.forget("c-1")
    erased = await read()
    assert (erased.name, erased_fields(erased)) == ("[erased]", frozenset({"name"}))
