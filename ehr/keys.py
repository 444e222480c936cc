"""Key rings read from the environment: `id:base64key,id:base64key`, the first one current.

Used for the audit log's HMAC keys (and, later, field encryption). A ring is
parsed once at start-up; a missing or malformed ring stops the process with a
message naming the variable, never a silent fallback.
"""

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

# At most 12 characters: an encrypted 20-byte TOTP secret must fit django-otp's 80-character column.
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,12}$")


@dataclass(frozen=True)
class KeyRing:
    current_id: str
    keys: dict[str, bytes]

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]


def parse_key_ring(name: str, raw: str | None, *, min_bytes: int = 32) -> KeyRing:
    if not raw or not raw.strip():
        raise ImproperlyConfigured(
            f"{name} is not set. Generate one with `python scripts/ensure_env.py` (development) "
            f"or see docs/keys.md."
        )
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for entry in raw.split(","):
        entry = entry.strip()
        key_id, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID.match(key_id):
            raise ImproperlyConfigured(
                f"{name}: each entry must be `id:base64key` (id: 1-12 of A-Z a-z 0-9 _ -)."
            )
        try:
            key = base64.urlsafe_b64decode(encoded.encode() + b"=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{name}: key {key_id!r} is not valid base64.") from None
        if len(key) < min_bytes:
            raise ImproperlyConfigured(
                f"{name}: key {key_id!r} must be at least {min_bytes} bytes."
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"{name}: key id {key_id!r} appears twice.")
        keys[key_id] = key
        order.append(key_id)
    return KeyRing(current_id=order[0], keys=keys)


def new_key_entry(key_id: str, n_bytes: int = 32) -> str:
    """Return a fresh `id:base64key` entry."""
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(n_bytes)).decode().rstrip('=')}"


def parse_public_key_list(name: str, raw: str) -> dict:
    """Read `id:base64` Ed25519 public keys (may be empty); stop at start-up if malformed."""
    from audit.hashing import parse_public_keys

    try:
        return parse_public_keys(raw or "")
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}.") from None
