import base64

import pytest
from django.core.exceptions import ImproperlyConfigured

from ehr.keys import new_key_entry, parse_key_ring


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_first_key_signs_all_verify():
    ring = parse_key_ring("K", f"new:{b64(b'n' * 32)}, old:{b64(b'o' * 32)}")
    assert ring.current_id == "new" and ring.current == b"n" * 32
    assert set(ring.keys) == {"new", "old"}


def test_generated_entries_parse():
    assert len(parse_key_ring("K", new_key_entry("a1")).current) == 32


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "K is not set"),
        ("  ", "K is not set"),
        ("nokey", "each entry must be"),
        (f"bad id!:{b64(b'x' * 32)}", "each entry must be"),
        ("a:%%%not-base64%%%", "not valid base64"),
        (f"a:{b64(b'short')}", "at least 32 bytes"),
        (f"a:{b64(b'x' * 32)},a:{b64(b'y' * 32)}", "appears twice"),
    ],
)
def test_missing_or_malformed_rings_stop_start_up(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_key_ring("K", raw)


def test_a_process_without_the_audit_key_refuses_to_start():
    from tests.ehr.test_settings import STRONG, _start

    result = _start({"SECRET_KEY": STRONG, "AUDIT_HMAC_KEYS": ""})
    assert result.returncode != 0
    assert "AUDIT_HMAC_KEYS is not set" in result.stderr
