"""The keyed side of the audit chains, and the walk that verifies one chain.

Each event has two hashes (docs/audit.md):
- `row_hash`, the public link (`audit/hashing.py`): SHA-256 over the previous
  event's `row_hash` and the event's content. Anyone can recompute it; signed
  checkpoints fix the chains' heads, so nobody without the signing key can
  rewrite what a checkpoint covers.
- `mac`, keyed with `AUDIT_HMAC_KEYS`: HMAC-SHA-256 over `row_hash`. It covers
  the newest events, written since the last checkpoint, against anyone who can
  write to the database but holds no key.

Events written before the chains were split sit in the legacy chain, with the
keyed hash they were written with as their `mac`: HMAC-SHA-256 over the
previous event's `mac` and `canonical(row)` (the v1 form below, which must
never change). Their `row_hash` was computed when they moved into the chain.

The foreign keys `actor`/`account` are outside both hashes, because deleting a
user sets them to NULL; they decide who reads a row, so verification holds them
to the hashed ids: each must equal its ref, or be NULL only once that user no
longer exists.
"""

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, Exists, OuterRef, Q, Value, When

from accounts.models import User
from audit import hashing
from audit.models import AuditEvent

# The fields of the legacy keyed hash, in this order (v1; frozen): the event's
# fields less its chain, which did not exist then.
FIELDS = tuple(name for name in hashing.EVENT_FIELDS if name != "chain_id")


# Each foreign key column, the hashed id it must equal, and the flag a row given
# to verify() carries: whether a user with that id exists (needed, and looked up,
# only where the foreign key is NULL).
USER_LINKS = (
    ("actor_id", "actor_ref", "actor_ref_exists"),
    ("account_id", "account_ref", "account_ref_exists"),
)


# The hashed fields, then the foreign keys and the chain's own columns: what the
# writer inserts, and (with the row's id) what a walk reads.
EVENT_COLUMNS = (
    *hashing.EVENT_FIELDS,
    "actor_id",
    "account_id",
    "key_id",
    "prev_hash",
    "row_hash",
    "mac",
)


def _user_exists(fk: str, ref: str) -> Case:
    """Return whether the user `ref` names exists; look it up only where `fk` is NULL."""
    return Case(
        When(
            Q(**{f"{fk}__isnull": True, f"{ref}__isnull": False}),
            then=Exists(User.objects.filter(pk=OuterRef(ref))),
        ),
        default=Value(False),
    )


VERIFY_COLUMNS = ("id", *EVENT_COLUMNS)
VERIFY_FLAGS = {exists: _user_exists(fk, ref) for fk, ref, exists in USER_LINKS}


def rows_of(
    chain_id: int, start_seq: int, batch: int, *, through: int | None = None
) -> Iterator[dict]:
    """Yield a chain's events from `start_seq` in seq order, in batches (constant memory).

    Without `through`, rows beyond the head are yielded too: an event inserted behind
    the app's back past the head is a problem the walk must see. With it, the walk
    stops at that seq (a head read earlier, while writers go on).
    """
    after = start_seq - 1
    while True:
        rows = AuditEvent.objects.filter(chain_id=chain_id, seq__gt=after)
        if through is not None:
            rows = rows.filter(seq__lte=through)
        chunk = list(rows.order_by("seq").values(*VERIFY_COLUMNS, **VERIFY_FLAGS)[:batch])
        yield from chunk
        if len(chunk) < batch:
            return
        after = chunk[-1]["seq"]


def canonical(row: dict) -> bytes:
    """The legacy (v1) canonical form of a row."""
    values = [
        hashing.timestamp(row[name]) if name == "occurred_at" else row[name] for name in FIELDS
    ]
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def legacy_mac(row: dict, *, prev_hash: str, key: bytes) -> str:
    """The keyed hash of an event of the legacy chain (the single chain's row hash)."""
    message = prev_hash.encode() + b"\n" + canonical(row)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def event_mac(row_hash: str, *, key: bytes) -> str:
    return hmac.new(key, b"ehr-audit-mac/2\n" + row_hash.encode(), hashlib.sha256).hexdigest()


def signing_key() -> tuple[str, bytes]:
    ring = settings.AUDIT_HMAC_KEYS
    return ring.current_id, ring.current


def verification_key(key_id: str) -> bytes | None:
    return settings.AUDIT_HMAC_KEYS.keys.get(key_id)


@dataclass(frozen=True)
class Problem:
    reason: str
    chain_id: int | None = None
    seq: int | None = None
    row_id: int | None = None
    checkpoint: int | None = None

    def where(self) -> str:
        event = []
        if self.chain_id is not None:
            event.append(f"chain {self.chain_id}")
        if self.seq is not None:
            event.append(f"seq {self.seq}")
        if self.row_id is not None:
            event.append(f"(row id {self.row_id})")
        parts = [f"checkpoint {self.checkpoint}"] if self.checkpoint is not None else []
        if event:
            parts.append(" ".join(event))
        return ", ".join(parts) or "the log"


@dataclass(frozen=True)
class ChainStart:
    """Where a walk begins and what the chain's rows must satisfy."""

    chain_id: int
    kind: str
    practice_id: int | None
    start_seq: int
    start_hash: str
    start_mac: str


@dataclass(frozen=True)
class WalkEnd:
    checked: int
    seq: int  # seq of the last event checked (start_seq - 1 when none)
    row_hash: str
    problem: Problem | None


def _same(stored, expected: str) -> bool:
    """Compare hashes in constant time; a stored value that is not text never matches
    (compare_digest refuses text beyond ASCII with an error)."""
    return isinstance(stored, str) and hmac.compare_digest(stored.encode(), expected.encode())


def _row_problem(
    row: dict, start: ChainStart, legacy: bool, expected_prev: str, expected_mac: str
) -> str | None:
    """What is wrong with one event in its place, if anything (`verify`)."""
    if not legacy and row["practice_id"] != start.practice_id:
        return "the event belongs to another practice's chain"
    if not _same(row["prev_hash"], expected_prev):
        return "prev_hash does not match the previous event"
    if not _same(row["row_hash"], hashing.row_hash(row, prev_hash=row["prev_hash"])):
        return "content does not match its hash (edited)"
    key = verification_key(row["key_id"])
    if key is None:
        return (
            f"unknown key id {row['key_id']!r} (not a key of this process's AUDIT_HMAC_KEYS: "
            "when rotating, every process must hold the new key first, docs/keys.md)"
        )
    mac = (
        legacy_mac(row, prev_hash=expected_mac, key=key)
        if legacy
        else event_mac(row["row_hash"], key=key)
    )
    if not _same(row["mac"], mac):
        return "the keyed hash does not match (written without the key)"
    for fk, ref, exists in USER_LINKS:
        if row[fk] is None:
            # NULL is what deleting the user leaves; while the user exists,
            # someone cleared it to take the row out of that user's log.
            if row[ref] is not None and row[exists]:
                return f"{fk} was cleared while user {row[ref]} still exists"
        elif row[fk] != row[ref]:
            return f"{fk} was changed"
    return None


def verify(rows: Iterable[dict], start: ChainStart) -> WalkEnd:
    """Walk one chain's `rows` (dicts ordered by seq) from its start.

    Each row carries the hashed fields, the chain's columns, the foreign keys and
    the flags named in USER_LINKS.
    """
    legacy = start.kind == "legacy"
    expected_seq, expected_prev, expected_mac = start.start_seq, start.start_hash, start.start_mac
    checked = 0

    def end(problem: Problem | None = None) -> WalkEnd:
        return WalkEnd(checked, expected_seq - 1, expected_prev, problem)

    for row in rows:
        here = {"chain_id": start.chain_id, "seq": row["seq"], "row_id": row["id"]}
        if row["seq"] != expected_seq:
            reason = f"expected seq {expected_seq}, found {row['seq']}: " + (
                "events are missing" if row["seq"] > expected_seq else "events are out of order"
            )
            return end(Problem(reason, **here))
        try:
            reason = _row_problem(row, start, legacy, expected_prev, expected_mac)
        except (TypeError, ValueError, AttributeError) as error:
            # Columns no event of the app could hold (a value of another type, a date
            # that is not one): written behind its back, and named, not a crash.
            reason = f"the event's columns cannot be read ({type(error).__name__}: written by hand)"
        if reason is not None:
            return end(Problem(reason, **here))
        expected_seq, expected_prev, expected_mac = row["seq"] + 1, row["row_hash"], row["mac"]
        checked += 1
    return end()
