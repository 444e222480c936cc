"""Field-level encryption at rest: AES-256-GCM with a key ring.

A stored value is text: `v1:<key id>:<base64url(nonce || ciphertext || tag)>`.
The associated data binds it to one model, field and owner
(`support_pin.AccountPins|support_pin|42`), so a value copied onto another
row, field or user does not decrypt. New values use the first key of
FIELD_ENCRYPTION_KEYS; every key of the ring decrypts. There is no plaintext
fallback: a value that does not decrypt is an error.
"""

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

VERSION = "v1"
NONCE_BYTES = 12  # 96-bit random nonces; far below GCM's 2^32 messages-per-key bound here


class DecryptionError(Exception):
    """The value is malformed, was made with an unknown key, or belongs to another row."""


def associated_data(*, model: str, field: str, owner_pk: int) -> bytes:
    return f"{model}|{field}|{owner_pk}".encode()


def encrypt(plaintext: str, *, aad: bytes) -> str:
    return encrypt_bytes(plaintext.encode(), aad=aad)


def encrypt_bytes(data: bytes, *, aad: bytes) -> str:
    ring = settings.FIELD_ENCRYPTION_KEYS
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.current).encrypt(nonce, data, aad)
    token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{VERSION}:{ring.current_id}:{token}"


def key_id_of(stored: str) -> str | None:
    parts = stored.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == VERSION else None


def decrypt(stored: str, *, aad: bytes) -> str:
    return decrypt_bytes(stored, aad=aad).decode()


def decrypt_bytes(stored: str, *, aad: bytes) -> bytes:
    version, _, rest = stored.partition(":")
    key_id, _, token = rest.partition(":")
    if version != VERSION or not key_id or not token:
        raise DecryptionError("not an encrypted value of a known format")
    key = settings.FIELD_ENCRYPTION_KEYS.keys.get(key_id)
    if key is None:
        raise DecryptionError(f"encrypted with key {key_id!r}, which is not in the ring")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("the encrypted value is not valid base64") from None
    if len(raw) < NONCE_BYTES + 16:
        raise DecryptionError("the encrypted value is truncated")
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionError("the value does not belong here or was altered") from None


def needs_rotation(stored: str) -> bool:
    return key_id_of(stored) != settings.FIELD_ENCRYPTION_KEYS.current_id


def current_prefix() -> str:
    """How every value sealed under the primary key begins (to find the ones that are not)."""
    return f"{VERSION}:{settings.FIELD_ENCRYPTION_KEYS.current_id}:"


DIGEST_CHARS = 16  # 96 bits, base64url: what fits a 16-character column, such as django-otp's


def keyed_digests(value: str, *, purpose: str) -> list[str]:
    """Return the keyed digest of `value` under every FIELD_ENCRYPTION_KEYS key, current first.

    For secrets that are only ever compared, never shown again (backup codes):
    HMAC-SHA-256 under a key derived for `purpose` from each field key, so a
    reader of the database learns nothing, and a value stored under an older
    key still matches while that key stays in the ring.
    """
    ring = settings.FIELD_ENCRYPTION_KEYS
    ordered = [ring.current_id, *(key_id for key_id in ring.keys if key_id != ring.current_id)]
    digests = []
    for key_id in ordered:
        subkey = hmac.new(ring.keys[key_id], purpose.encode(), hashlib.sha256).digest()
        mac = hmac.new(subkey, value.encode(), hashlib.sha256).digest()
        digests.append(base64.urlsafe_b64encode(mac[:12]).decode())
    return digests
