"""The hash chain over audit events.

row_hash = HMAC-SHA-256(key, prev_hash + "\\n" + canonical JSON of the row's content)

The content covers every column an attacker could want to change (time, who,
whom, practice, patient, kind, type, action, details, IP, user agent, request
id, data, seq) but not the `actor`/`account` foreign keys, which the database
may set to NULL when a user is deleted; their values are covered through
`actor_ref`/`account_ref`. Without the key nobody can compute a valid hash, so
an edited, inserted or reordered row breaks the chain at that row, and a
deleted one leaves a gap in `seq` and a broken link.

The foreign keys still decide who reads a row (a provider's own log, the
username filter), so verification holds them to the hashed ids: each must equal
its ref, or be NULL only once that user no longer exists. The append-only guards
let anyone clear them, as a deletion does; this check is what tells the two apart.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

FIELDS = (
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


# Each foreign key column, the hashed id it must equal, and the flag a row given
# to verify() carries: whether a user with that id exists (needed, and looked up,
# only where the foreign key is NULL).
USER_LINKS = (
    ("actor_id", "actor_ref", "actor_ref_exists"),
    ("account_id", "account_ref", "account_ref_exists"),
)


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: dict) -> bytes:
    values = []
    for name in FIELDS:
        value = row[name]
        if name == "occurred_at":
            value = _timestamp(value)
        values.append(value)
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(row: dict, *, prev_hash: str, key: bytes) -> str:
    message = prev_hash.encode() + b"\n" + canonical(row)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def anchor_signature(*, seq: int, prev_hash: str, key: bytes) -> str:
    return hmac.new(key, f"anchor\n{seq}\n{prev_hash}".encode(), hashlib.sha256).hexdigest()


def signing_key() -> tuple[str, bytes]:
    ring = settings.AUDIT_HMAC_KEYS
    return ring.current_id, ring.current


def verification_key(key_id: str) -> bytes | None:
    return settings.AUDIT_HMAC_KEYS.keys.get(key_id)


@dataclass(frozen=True)
class Problem:
    seq: int | None
    row_id: int | None
    reason: str


def verify(rows, *, start_seq: int, start_hash: str) -> tuple[int, Problem | None]:
    """Walk `rows` (dicts ordered by seq) from an anchor; return (rows checked, first problem).

    Each row carries the hashed fields, the chain's columns, the foreign keys and
    the flags named in USER_LINKS.
    """
    expected_seq, expected_prev = start_seq, start_hash
    checked = 0
    for row in rows:
        where = {"seq": row["seq"], "row_id": row["id"]}
        if row["seq"] != expected_seq:
            reason = f"expected seq {expected_seq}, found {row['seq']}: " + (
                "events are missing" if row["seq"] > expected_seq else "events are out of order"
            )
            return checked, Problem(reason=reason, **where)
        if not hmac.compare_digest(row["prev_hash"], expected_prev):
            return checked, Problem(reason="prev_hash does not match the previous event", **where)
        key = verification_key(row["key_id"])
        if key is None:
            return checked, Problem(reason=f"unknown key id {row['key_id']!r}", **where)
        if not hmac.compare_digest(
            row["row_hash"], row_hash(row, prev_hash=row["prev_hash"], key=key)
        ):
            return checked, Problem(reason="content does not match its hash (edited)", **where)
        for fk, ref, exists in USER_LINKS:
            if row[fk] is None:
                # NULL is what deleting the user leaves; while the user exists,
                # someone cleared it to take the row out of that user's log.
                if row[ref] is not None and row[exists]:
                    reason = f"{fk} was cleared while user {row[ref]} still exists"
                    return checked, Problem(reason=reason, **where)
            elif row[fk] != row[ref]:
                return checked, Problem(reason=f"{fk} was changed", **where)
        expected_seq, expected_prev = row["seq"] + 1, row["row_hash"]
        checked += 1
    return checked, None
