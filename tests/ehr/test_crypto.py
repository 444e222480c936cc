import base64

import pytest
from django.conf import settings
from django.core.checks import Error
from django.test import override_settings

from ehr import crypto
from ehr.checks import check_key_rings
from ehr.keys import KeyRing, parse_key_ring

AAD = crypto.associated_data(model="support_pin.AccountPins", field="support_pin", owner_pk=7)


def ring(*entries: tuple[str, bytes]) -> KeyRing:
    return KeyRing(current_id=entries[0][0], keys=dict(entries))


def test_round_trip_and_format():
    stored = crypto.encrypt("0427", aad=AAD)
    assert stored.startswith(f"v1:{settings.FIELD_ENCRYPTION_KEYS.current_id}:")
    assert "0427" not in stored
    assert crypto.decrypt(stored, aad=AAD) == "0427"
    assert crypto.encrypt("0427", aad=AAD) != stored  # a fresh nonce every time


@pytest.mark.parametrize(
    "other",
    [
        crypto.associated_data(model="support_pin.AccountPins", field="support_pin", owner_pk=8),
        crypto.associated_data(model="support_pin.AccountPins", field="app_pin", owner_pk=7),
        crypto.associated_data(model="accounts.User", field="support_pin", owner_pk=7),
    ],
)
def test_a_value_copied_to_another_owner_field_or_model_does_not_decrypt(other):
    stored = crypto.encrypt("0427", aad=AAD)
    with pytest.raises(crypto.DecryptionError, match="does not belong here"):
        crypto.decrypt(stored, aad=other)


def test_tampered_truncated_malformed_and_unknown_key_values_fail():
    stored = crypto.encrypt("0427", aad=AAD)
    version, key_id, token = stored.split(":")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode()
    cases = {
        f"{version}:{key_id}:{flipped}": "does not belong here",
        f"{version}:{key_id}:{token[:10]}": "truncated",
        f"{version}:nokey:{token}": "not in the ring",
        "0427": "known format",
        f"v2:{key_id}:{token}": "known format",
        f"{version}:{key_id}:!!!": "base64|truncated",
    }
    for value, message in cases.items():
        with pytest.raises(crypto.DecryptionError, match=message):
            crypto.decrypt(value, aad=AAD)


def test_old_keys_decrypt_new_values_use_the_first_key():
    old, new = ("old", b"o" * 32), ("new", b"n" * 32)
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(old)):
        stored = crypto.encrypt("1111", aad=AAD)
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(new, old)):
        assert crypto.decrypt(stored, aad=AAD) == "1111"
        assert crypto.needs_rotation(stored)
        fresh = crypto.encrypt("1111", aad=AAD)
        assert crypto.key_id_of(fresh) == "new" and not crypto.needs_rotation(fresh)
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(new)), pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored, aad=AAD)


def test_system_check_reports_missing_and_wrong_size_keys():
    with override_settings(FIELD_ENCRYPTION_KEYS=None):
        errors = check_key_rings(None)
    assert [e.id for e in errors] == ["ehr.E001"]
    assert isinstance(errors[0], Error) and "FIELD_ENCRYPTION_KEYS is missing" in errors[0].msg
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(("long", b"x" * 48))):
        errors = check_key_rings(None)
    assert "it must be exactly 32" in errors[0].msg
    assert check_key_rings(None) == []


def test_system_check_refuses_one_key_in_two_rings(settings):
    shared = settings.AUDIT_HMAC_KEYS.current
    with override_settings(AUDIT_SIGNING_KEY=ring(("sig", settings.AUDIT_SIGNING_KEY.current))):
        assert check_key_rings(None) == []
    with override_settings(AUDIT_SIGNING_KEY=ring(("sig", shared))):
        [error] = check_key_rings(None)
    assert error.id == "ehr.E006"
    assert error.msg == (
        f"AUDIT_SIGNING_KEY: key 'sig' is also key {settings.AUDIT_HMAC_KEYS.current_id!r} of "
        "AUDIT_HMAC_KEYS; each of these settings needs keys of its own."
    )
    old = ("old", settings.FIELD_ENCRYPTION_KEYS.current)
    with override_settings(AUDIT_HMAC_KEYS=ring(("new", b"h" * 32), old)):
        assert [e.id for e in check_key_rings(None)] == ["ehr.E006"]
    # HMAC pads a key with zeros: the same key, though the bytes differ.
    padded = ("padded", settings.AUDIT_SIGNING_KEY.current + b"\0\0")
    with override_settings(AUDIT_HMAC_KEYS=ring(padded)):
        assert [e.id for e in check_key_rings(None)] == ["ehr.E006"]


def test_a_process_without_field_keys_refuses_to_start():
    from tests.ehr.test_settings import STRONG, _start

    result = _start({"SECRET_KEY": STRONG, "FIELD_ENCRYPTION_KEYS": ""})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS is not set" in result.stderr
    short = base64.urlsafe_b64encode(b"x" * 16).decode()
    result = _start({"SECRET_KEY": STRONG, "FIELD_ENCRYPTION_KEYS": f"k:{short}"})
    assert "at least 32 bytes" in result.stderr
    with pytest.raises(Exception, match="at least 32 bytes"):
        parse_key_ring("FIELD_ENCRYPTION_KEYS", f"k:{short}")
