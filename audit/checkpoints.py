"""Signed checkpoints: every chain's head at one moment, under an Ed25519 signature.

`manage.py audit_checkpoint` takes one every minute (docs/audit.md); each export
of the log takes one too, so what it streams is what a checkpoint covers.
"""

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit import hashing
from audit.hashing import GENESIS_HASH
from audit.models import AuditChain, AuditCheckpoint, AuditCheckpointLeaf

# Any constant will do: one lock for whoever writes checkpoints (PostgreSQL).
_LOCK_ID = 0x6175646974  # "audit"

HEAD_COLUMNS = ("id", "kind", "practice_id", "start_seq", "start_hash", "seq", "row_hash")


def signing_key() -> tuple[str, Ed25519PrivateKey]:
    ring = settings.AUDIT_SIGNING_KEY
    return ring.current_id, Ed25519PrivateKey.from_private_bytes(ring.current)


def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """The keys whose checkpoints verify: the signing keys' and the retired ones'."""
    keys = {
        key_id: Ed25519PrivateKey.from_private_bytes(seed).public_key()
        for key_id, seed in settings.AUDIT_SIGNING_KEY.keys.items()
    }
    keys.update(settings.AUDIT_SIGNING_PUBLIC_KEYS)
    return keys


def public_key_lines(*, all_keys: bool) -> list[str]:
    """`id:base64` lines, the current key first (the form `audit_verify` reads)."""
    current_id, private = signing_key()
    lines = [f"{current_id}:{hashing.public_key_text(private.public_key())}"]
    if all_keys:
        for key_id, key in trusted_public_keys().items():
            if key_id != current_id:
                lines.append(f"{key_id}:{hashing.public_key_text(key)}")
    return lines


def leaf_of(head: dict) -> dict:
    """A chain's head as a Merkle leaf (hashing.LEAF_FIELDS)."""
    return {
        "chain_id": head["id"],
        "kind": head["kind"],
        "practice_id": head["practice_id"],
        "start_seq": head["start_seq"],
        "start_hash": head["start_hash"],
        "seq": head["seq"],
        "row_hash": head["row_hash"],
    }


@dataclass(frozen=True)
class Frozen:
    """A checkpoint and the heads it covers: {chain id: leaf}."""

    checkpoint: AuditCheckpoint
    leaves: dict[int, dict]
    new: bool = True

    @property
    def positions(self) -> dict[int, int]:
        return {chain_id: leaf["seq"] for chain_id, leaf in self.leaves.items()}


def audit_checkpoint_create() -> Frozen:
    """Sign every chain's current head; reuse the newest checkpoint if none moved.

    Writers of checkpoints take turns (an advisory lock on PostgreSQL, the write
    lock on SQLite). The heads are read without locking the chains: each head is
    committed together with its events, so it always names an event that exists.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        heads = list(AuditChain.objects.order_by("id").values(*HEAD_COLUMNS))
        leaves = {head["id"]: leaf_of(head) for head in heads}
        last = AuditCheckpoint.objects.order_by("-number").first()
        seen = checkpoint_leaves(last.number) if last else {}
        changed = [leaf for chain_id, leaf in leaves.items() if seen.get(chain_id) != leaf]
        if last is not None and not changed and len(seen) == len(leaves):
            return Frozen(last, leaves, new=False)
        ordered = [leaves[chain_id] for chain_id in sorted(leaves)]
        key_id, private = signing_key()
        header = {
            "number": (last.number + 1) if last else 1,
            "created_at": timezone.now(),
            "prev_hash": last.checkpoint_hash if last else GENESIS_HASH,
            "merkle_root": hashing.merkle_root([hashing.leaf_bytes(leaf) for leaf in ordered]),
            "chain_count": len(ordered),
        }
        signature = private.sign(hashing.checkpoint_message(header))
        checkpoint = AuditCheckpoint.objects.create(
            **header,
            key_id=key_id,
            signature=hashing.b64(signature),
            checkpoint_hash=hashing.checkpoint_hash(header),
        )
        AuditCheckpointLeaf.objects.bulk_create(
            AuditCheckpointLeaf(
                checkpoint=checkpoint,
                chain_id=leaf["chain_id"],
                start_seq=leaf["start_seq"],
                start_hash=leaf["start_hash"],
                seq=leaf["seq"],
                row_hash=leaf["row_hash"],
            )
            for leaf in changed
        )
    return Frozen(checkpoint, leaves)


def checkpoint_leaves(number: int) -> dict[int, dict]:
    """Every chain's head as checkpoint `number` signed it: {chain id: leaf}.

    The newest leaf of each chain up to that checkpoint, found per chain through
    the (chain, checkpoint) index: the cost follows the number of chains, not the
    number of checkpoints ever taken.
    """
    checkpoint_id = AuditCheckpoint.objects.filter(number=number).values("id")
    newest = (
        AuditCheckpointLeaf.objects.filter(
            chain_id=OuterRef("pk"), checkpoint_id__lte=Subquery(checkpoint_id)
        )
        .order_by("-checkpoint_id")
        .values("id")[:1]
    )
    leaf_ids = AuditChain.objects.annotate(leaf=Subquery(newest)).values("leaf")
    rows = AuditCheckpointLeaf.objects.filter(id__in=leaf_ids).values(
        "chain_id",
        "start_seq",
        "start_hash",
        "seq",
        "row_hash",
        "chain__kind",
        "chain__practice_id",
    )
    return {
        row["chain_id"]: leaf_of(
            {
                **row,
                "id": row["chain_id"],
                "kind": row["chain__kind"],
                "practice_id": row["chain__practice_id"],
            }
        )
        for row in rows
    }
