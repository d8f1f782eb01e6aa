"""The ciphers: AES-256-GCM per field under a subject's data key, data keys wrapped by a
key-encryption key (KEK).

A sealed field is the text `pii:1:<key id>:<base64(nonce + ciphertext + tag)>`. Its
associated data is `tenant, subject, group, event type, field`: a ciphertext moved to another
field, subject, event type or tenant fails authentication (`PersonalDataIntegrityError`).

A KEK is anything with `key_id`, `wrap(data_key)` and `unwrap(wrapped)` (`KeyEncryptionKey`):
`LocalKEK` holds one in memory (`LocalKEK.from_env()` reads it from the environment); a KMS or
Vault transit engine fits the same three members (docs/personal-data.md).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from eventsource._optional import optional
from eventsource.exceptions import MissingExtraError, PersonalDataIntegrityError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["TOKEN_PREFIX", "KeyEncryptionKey", "LocalKEK", "new_data_key", "open_field", "seal"]

TOKEN_PREFIX = "pii:1:"
_NONCE = 12


_urandom = os.urandom
_AESGCM: list[type[AESGCM]] = []  # loaded on first use: `import eventsource` loads no cipher


def _aesgcm(key: bytes) -> AESGCM:
    if not _AESGCM:
        module = optional("cryptography.hazmat.primitives.ciphers.aead")
        if module is None:
            raise MissingExtraError("personal data encryption", "cryptography", "crypto")
        _AESGCM.append(module.AESGCM)
    return _AESGCM[0](key)


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys; `key_id` is stored beside each wrapped key."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class LocalKEK:
    """A 256-bit KEK held in process memory (AES-GCM key wrapping)."""

    def __init__(self, key: bytes, key_id: str = "local") -> None:
        if len(key) != 32:
            raise ValueError(f"a KEK is 32 bytes, got {len(key)}")
        self._cipher = _aesgcm(key)
        self._key_id = key_id

    @property
    def key_id(self) -> str:
        """The name stored with each key it wraps."""
        return self._key_id

    @classmethod
    def from_env(cls, variable: str = "EVENTSOURCE_KEK", key_id: str | None = None) -> LocalKEK:
        """The KEK in environment variable `variable` (32 bytes, base64); KeyError if unset."""
        text = os.environ[variable]
        return cls(base64.b64decode(text, validate=True), key_id or variable)

    @staticmethod
    def generate() -> bytes:
        """A new random KEK (store it base64-encoded, e.g. in the environment)."""
        return secrets.token_bytes(32)

    def wrap(self, data_key: bytes) -> bytes:
        """The data key encrypted under this KEK."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._cipher.encrypt(nonce, data_key, self._key_id.encode())

    def unwrap(self, wrapped: bytes) -> bytes:
        """The data key back; `PersonalDataIntegrityError` if `wrapped` is not this KEK's."""
        try:
            return self._cipher.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], self._key_id.encode())
        except Exception as exc:  # cryptography's InvalidTag
            raise PersonalDataIntegrityError(
                f"a data key does not unwrap under KEK {self._key_id!r}"
            ) from exc


def new_data_key() -> bytes:
    """A fresh 256-bit data key."""
    return secrets.token_bytes(32)


def data_cipher(data_key: bytes) -> AESGCM:
    """The AES-GCM cipher of one data key (kept in the key cache)."""
    return _aesgcm(data_key)


def seal(cipher: AESGCM, key_id: str, plaintext: bytes, associated: bytes) -> str:
    """`plaintext` as a sealed field text (see the module docstring)."""
    nonce = _urandom(_NONCE)  # what secrets.token_bytes returns, minus a call
    body = binascii.b2a_base64(nonce + cipher.encrypt(nonce, plaintext, associated), newline=False)
    return f"{TOKEN_PREFIX}{key_id}:{body.decode()}"


def token_parts(token: str) -> tuple[str, str]:
    """(the data key id a sealed field names, its base64 body)."""
    _, _, key_id, body = token.split(":", 3)
    return key_id, body


def open_field(cipher: AESGCM, body: str, associated: bytes) -> bytes:
    """The plaintext of a sealed field's `body`; `PersonalDataIntegrityError` if it fails
    authentication (altered, or moved from another field, subject, event type or tenant)."""
    try:
        raw = binascii.a2b_base64(body)
        return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], associated)
    except Exception as exc:  # InvalidTag, or a body that is not base64
        raise PersonalDataIntegrityError(
            "the ciphertext fails authentication (altered, or moved from another field, "
            "subject, event type or tenant)"
        ) from exc
