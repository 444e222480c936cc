"""The row hash as it must stay for as long as the log is kept.

Every stored `row_hash` was computed from `chain.canonical`; if the canonical
form or the HMAC input changes, every event already written fails verification.
These vectors are written out literally so that such a change cannot pass.
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit import chain

KEY = bytes(range(32))
PREV_HASH = "6da0633528deaa0144e7b058315f0b753ec0b945163a72bf96a0d18180f9de0d"


def vector_row() -> dict:
    return {
        "seq": 4711,
        "occurred_at": datetime(2024, 3, 9, 17, 5, 42, 123456, tzinfo=UTC),
        "actor_ref": 12,
        "actor_label": "496094 (dorothy Ludwig)",
        "account_ref": 34,
        "account_label": "rn.okafor (Ngozi Okafor)",
        "practice_id": 3,
        "patient_id": "P-000123",
        # Non-ASCII and a quote: pins ensure_ascii=False and the JSON escaping.
        "patient_name": 'Zoë "Bo" Ångström',
        "kind": "support_pin.validated",
        "type": "Account",
        "action": "Validate",
        "details": "Support PIN validated for dorothy Ludwig",
        "ip": "2001:db8::7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "request_id": "9f2c1e0a5b7d4c3e8f1a2b3c4d5e6f70",
        # Keys out of order, and each JSON scalar type: pins sort_keys and the literals.
        "data": {"rows": 51, "agent": 12, "ok": True, "note": None},
    }


CANONICAL = (
    b'[4711,"2024-03-09T17:05:42.123456Z",12,"496094 (dorothy Ludwig)",34,'
    b'"rn.okafor (Ngozi Okafor)",3,"P-000123","Zo\xc3\xab \\"Bo\\" \xc3\x85ngstr\xc3\xb6m",'
    b'"support_pin.validated","Account","Validate","Support PIN validated for dorothy Ludwig",'
    b'"2001:db8::7","Mozilla/5.0 (X11; Linux x86_64)","9f2c1e0a5b7d4c3e8f1a2b3c4d5e6f70",'
    b'{"agent":12,"note":null,"ok":true,"rows":51}]'
)
ROW_HASH = "f7a5d51bfc72443ddf3f7d2ca2232e6b44deeb6f099034a819ae7f3f6e053470"


def test_the_row_covers_these_fields_in_this_order():
    assert chain.FIELDS == (
        "seq",
        "occurred_at",
        "actor_ref",
        "actor_label",
        "account_ref",
        "account_label",
        "practice_id",
        "patient_id",
        "patient_name",
        "kind",
        "type",
        "action",
        "details",
        "ip",
        "user_agent",
        "request_id",
        "data",
    )


def test_canonical_form_known_answer():
    assert chain.canonical(vector_row()) == CANONICAL


def test_row_hash_known_answer():
    assert chain.legacy_mac(vector_row(), prev_hash=PREV_HASH, key=KEY) == ROW_HASH


def test_the_time_is_hashed_as_the_same_instant_in_utc():
    row = vector_row()
    row["occurred_at"] = row["occurred_at"].astimezone(timezone(timedelta(hours=-5)))
    assert chain.canonical(row) == CANONICAL
    assert chain.legacy_mac(row, prev_hash=PREV_HASH, key=KEY) == ROW_HASH


CHANGED = {
    "seq": 4712,
    "occurred_at": datetime(2024, 3, 9, 17, 5, 42, 123457, tzinfo=UTC),
    "actor_ref": 13,
    "actor_label": "496094 (dorothy Ludwig) ",
    "account_ref": None,
    "account_label": "",
    "practice_id": 4,
    "patient_id": "P-000124",
    "patient_name": 'Zoe "Bo" Angstrom',
    "kind": "support_pin.failed",
    "type": "Security",
    "action": "View",
    "details": "Nothing happened",
    "ip": "2001:db8::8",
    "user_agent": "",
    "request_id": "9f2c1e0a5b7d4c3e8f1a2b3c4d5e6f71",
    "data": {"rows": 52, "agent": 12, "ok": True, "note": None},
}


@pytest.mark.parametrize("field", chain.FIELDS)
def test_changing_any_one_field_changes_the_digest(field):
    row = vector_row()
    row[field] = CHANGED[field]
    assert row[field] != vector_row()[field]
    assert chain.legacy_mac(row, prev_hash=PREV_HASH, key=KEY) != ROW_HASH


def test_the_previous_hash_and_the_key_change_the_digest():
    assert chain.legacy_mac(vector_row(), prev_hash="0" * 64, key=KEY) != ROW_HASH
    assert chain.legacy_mac(vector_row(), prev_hash=PREV_HASH, key=bytes(32)) != ROW_HASH
