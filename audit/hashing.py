"""The public hashes of the audit trail: events, Merkle tree, checkpoints.

Everything here is plain Python and `cryptography`, with no Django import, so
an outside auditor can verify an evidence file (`audit/offline.py`) with this
module, that one and a public key, and nothing of the server.

Event hash (one chain per practice, see docs/audit.md):

    content  = SHA-256(canonical JSON of the event's fields, EVENT_FIELDS order)
    row_hash = SHA-256("ehr-audit-event/2" LF prev_hash LF practice LF content)

`practice` is the practice id or empty; it stands outside `content` too so a
file may show another practice's event as (practice, content) only, and still
prove that the event is not one of yours.

Merkle tree over the chains' heads: RFC 6962 (Certificate Transparency), with
leaf = canonical JSON of [chain id, kind, practice, start seq, start hash, seq,
head hash].

Checkpoint: canonical JSON of {number, created_at, prev, root, chains}; its
hash is SHA-256("ehr-audit-checkpoint/1" LF message) and its signature is
Ed25519 over the same bytes.
"""

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS_HASH = "0" * 64  # prev_hash of a chain's first event, and of the first checkpoint

# The fields an event's hash covers, in this order.
EVENT_FIELDS = (
    "chain_id",
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

LEAF_FIELDS = ("chain_id", "kind", "practice_id", "start_seq", "start_hash", "seq", "row_hash")


def timestamp(value: datetime | str) -> str:
    """The one text form of an event time: UTC, microseconds, `Z`."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_canonical(row: dict) -> bytes:
    return _json(
        [timestamp(row[name]) if name == "occurred_at" else row[name] for name in EVENT_FIELDS]
    )


def event_content(row: dict) -> str:
    return hashlib.sha256(event_canonical(row)).hexdigest()


def event_hash(*, prev_hash: str, practice_id: int | None, content: str) -> str:
    practice = "" if practice_id is None else str(practice_id)
    message = f"ehr-audit-event/2\n{prev_hash}\n{practice}\n{content}".encode()
    return hashlib.sha256(message).hexdigest()


def row_hash(row: dict, *, prev_hash: str) -> str:
    return event_hash(
        prev_hash=prev_hash, practice_id=row["practice_id"], content=event_content(row)
    )


# Merkle tree (RFC 6962, section 2.1)


def leaf_bytes(leaf: dict) -> bytes:
    return _json([leaf[name] for name in LEAF_FIELDS])


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node_hash(_root(hashes[:k]), _root(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> str:
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    return _root([_leaf_hash(leaf) for leaf in leaves]).hex()


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, root last.

    Pairing neighbours bottom-up and carrying an odd last node up unchanged builds
    the same tree as RFC 6962's split at the largest power of two.
    """
    levels = [[_leaf_hash(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [_node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def merkle_path(levels: list[list[bytes]], index: int) -> list[str]:
    """The audit path of leaf `index`: the sibling hashes from the bottom up."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling].hex())
        index //= 2
    return path


def merkle_path_root(leaf: bytes, index: int, size: int, path: Sequence[str]) -> str | None:
    """The root that `leaf` at `index` in a tree of `size` leaves and `path` lead to.

    RFC 9162 section 2.1.3.2; None when the path has the wrong length for the tree.
    """
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    node = _leaf_hash(leaf)
    for sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            node = _node_hash(sibling, node)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = _node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return node.hex() if sn == 0 else None


# Checkpoints


def checkpoint_message(header: dict) -> bytes:
    """The bytes a checkpoint's signature covers."""
    body = {
        "number": header["number"],
        "created_at": timestamp(header["created_at"]),
        "prev": header["prev_hash"],
        "root": header["merkle_root"],
        "chains": header["chain_count"],
    }
    return b"ehr-audit-checkpoint/1\n" + _json(body)


def checkpoint_hash(header: dict) -> str:
    return hashlib.sha256(checkpoint_message(header)).hexdigest()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def public_key_text(key: Ed25519PublicKey) -> str:
    return b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_public_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """Read `id:base64` public keys, one or more, separated by commas, spaces or lines."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in text.replace(",", " ").split():
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError(f"public key entries are `id:base64`, not {entry!r}")
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if len(raw) != 32:
            raise ValueError(f"public key {key_id!r} is not an Ed25519 key (32 bytes)")
        keys[key_id] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def signature_valid(public_key: Ed25519PublicKey, header: dict, signature: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        public_key.verify(raw, checkpoint_message(header))
    except (InvalidSignature, ValueError):
        return False
    return True
