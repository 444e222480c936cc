"""Signed checkpoints: every chain's head at one moment, under an Ed25519 signature.

`manage.py audit_checkpoint` takes one every minute (docs/audit.md); each export
of the log takes one too, so what it streams is what a checkpoint covers.
"""

from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit import chain, hashing
from audit.chain import Problem
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


def header_of(checkpoint: AuditCheckpoint) -> dict:
    """What a checkpoint's hash and signature cover (hashing.checkpoint_message)."""
    return {
        "number": checkpoint.number,
        "created_at": checkpoint.created_at,
        "prev_hash": checkpoint.prev_hash,
        "merkle_root": checkpoint.merkle_root,
        "chain_count": checkpoint.chain_count,
    }


def file_record(checkpoint: AuditCheckpoint) -> dict:
    """A checkpoint as an evidence or archive file carries it (audit/offline.py)."""
    return {
        **header_of(checkpoint),
        "created_at": hashing.timestamp(checkpoint.created_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "checkpoint_hash": checkpoint.checkpoint_hash,
    }


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


class CheckpointRefused(Exception):
    """The chains no longer extend the heads the last checkpoint signed: nothing is signed."""

    def __init__(self, problem: Problem, *, checkpoint: int | None) -> None:
        super().__init__(f"{problem.where()}: {problem.reason}")
        self.problem = problem
        self.checkpoint = checkpoint  # the last one signed, which the chains contradict


@dataclass(frozen=True)
class Frozen:
    """A checkpoint and the heads it covers: {chain id: leaf}."""

    checkpoint: AuditCheckpoint
    leaves: dict[int, dict]
    new: bool = True

    @property
    def positions(self) -> dict[int, int]:
        return {chain_id: leaf["seq"] for chain_id, leaf in self.leaves.items()}


def audit_checkpoint_create(*, starts_moved: dict[int, tuple[int, str]] | None = None) -> Frozen:
    """Sign every chain's current head; reuse the newest checkpoint if none moved.

    Writers of checkpoints take turns (an advisory lock on PostgreSQL, the write
    lock on SQLite). The heads are read without locking the chains: each head is
    committed together with its events, so it always names an event that exists.

    Nothing is signed unless the last checkpoint is one that verifies and every
    chain extends the head it signed (`extension_problem`); otherwise
    CheckpointRefused, and the log keeps the checkpoints it has. `starts_moved`
    ({chain id: (start seq, start hash)}): the chains' new starts, from the archive
    that moved them; no other start may move.
    """
    with transaction.atomic():
        _take_turns()
        heads, last, seen = _signed_so_far()
        leaves = {head["id"]: leaf_of(head) for head in heads}
        changed = [leaf for chain_id, leaf in leaves.items() if seen.get(chain_id) != leaf]
        if last is not None and not changed and len(seen) == len(leaves):
            return Frozen(last, leaves, new=False)
        problem = extension_problem(heads, seen, starts_moved or {})
        if problem is not None:
            raise CheckpointRefused(problem, checkpoint=last.number if last else None)
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


WALK_BATCH = 5000


def _signed_so_far() -> tuple[list[dict], AuditCheckpoint | None, dict[int, dict]]:
    """Every chain's row now (HEAD_COLUMNS and `start_mac`), the last checkpoint, and
    the heads it signed (`checkpoint_leaves`), once they verify (`_unlike_signed`).

    The checkpoint first, the chains after: a chain's head only moves on, so heads
    read later are never behind a checkpoint signed in between.
    """
    last = AuditCheckpoint.objects.order_by("-number").first()
    seen = checkpoint_leaves(last.number) if last else {}
    if last is not None and (problem := _unlike_signed(last, seen)) is not None:
        raise CheckpointRefused(problem, checkpoint=last.number)
    heads = list(AuditChain.objects.order_by("id").values(*HEAD_COLUMNS, "start_mac"))
    return heads, last, seen


def _unlike_signed(last: AuditCheckpoint, leaves: dict[int, dict]) -> Problem | None:
    """What is wrong with the last checkpoint or the heads stored with it, if anything.

    The signer holds the chains to these heads, so they must be the signed ones: a
    stored head edited, dropped or renamed away (its chain's id changed), or a
    checkpoint added without the key, would otherwise let a rewritten chain through.
    """
    header = header_of(last)
    key = trusted_public_keys().get(last.key_id)
    if last.checkpoint_hash != hashing.checkpoint_hash(header):
        reason = "the last checkpoint's content does not match its hash (edited)"
    elif key is None:
        reason = (
            f"the last checkpoint is signed by an unknown key {last.key_id!r} (neither "
            "AUDIT_SIGNING_KEY nor AUDIT_SIGNING_PUBLIC_KEYS of this process holds it: when "
            "rotating, every process must trust the new key first, docs/keys.md)"
        )
    elif not hashing.signature_valid(key, header, last.signature):
        reason = "the last checkpoint's signature is not valid (forged or edited)"
    elif (
        len(leaves) != last.chain_count
        or hashing.merkle_root(
            [hashing.leaf_bytes(leaves[chain_id]) for chain_id in sorted(leaves)]
        )
        != last.merkle_root
    ):
        reason = "the chain heads stored with the last checkpoint are not the ones it signed"
    else:
        return None
    return Problem(reason, checkpoint=last.number)


def audit_checkpoint_check() -> None:
    """Raise CheckpointRefused if the chains no longer extend the last checkpoint; sign nothing.

    For work that must not go on over a log that contradicts what was signed (an
    archive), without taking a checkpoint of its own.
    """
    with transaction.atomic():
        _take_turns()  # no archive's boundary, moved starts and checkpoint, half seen
        heads, last, seen = _signed_so_far()
        problem = extension_problem(heads, seen, {})
    if problem is not None:
        raise CheckpointRefused(problem, checkpoint=last.number if last else None)


def _take_turns() -> None:
    """Wait for any other writer of checkpoints (PostgreSQL; SQLite's write lock already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])


def extension_problem(
    heads: list[dict], signed: dict[int, dict], starts_moved: dict[int, tuple[int, str]]
) -> Problem | None:
    """The first chain whose head does not extend what the last checkpoint signed of it.

    A signature vouches for a chain up to the head it names, so the head signed
    next must lie on the same chain further on: the same event where the last
    checkpoint stopped, and only events written with the key after it. Each chain
    is walked from the head last signed (from its start, for a chain no
    checkpoint has signed yet) to its head now, as `audit_verify` walks it: a
    minute's events at each checkpoint. Without this, whoever could rewrite a
    chain in the database (the triggers dropped, the keyed hash's key at hand)
    would have the next checkpoint sign the rewritten chain, and an evidence file
    that carries only that checkpoint would verify.

    A chain's start stays where it was signed (at seq 1 and the genesis hash for a
    chain never signed, the legacy chain aside), unless an archive moved it and says
    so (`starts_moved`): deleting a chain's first events and moving its start past
    them needs no key at all.

    `heads`: each chain's row (HEAD_COLUMNS and `start_mac`); `signed`: the last
    checkpoint's leaves (`checkpoint_leaves`).
    """
    gone = sorted(signed.keys() - {head["id"] for head in heads})
    if gone:
        return Problem("the chain, signed by the last checkpoint, is gone", chain_id=gone[0])
    for head in heads:
        chain_id, last = head["id"], signed.get(head["id"])
        start = chain.ChainStart(
            chain_id=chain_id,
            kind=head["kind"],
            practice_id=head["practice_id"],
            start_seq=head["start_seq"],
            start_hash=head["start_hash"],
            start_mac=head["start_mac"],
        )
        start_now = (head["start_seq"], head["start_hash"])
        start_signed = (last["start_seq"], last["start_hash"]) if last else (1, GENESIS_HASH)
        moved = start_now != start_signed and not (
            last is None and head["kind"] == "legacy"  # migration 0003's anchor
        )
        if moved and starts_moved.get(chain_id) != start_now:
            reason = (
                f"the chain's start moved from seq {start_signed[0]} to {start_now[0]}, "
                "and no archive moved it"
            )
            return Problem(reason, chain_id=chain_id, seq=start_now[0])
        if last is not None:
            if head["seq"] < last["seq"]:
                reason = f"the chain ends at seq {head['seq']}, the last checkpoint signed it to {last['seq']}"
                return Problem(reason, chain_id=chain_id, seq=head["seq"] + 1)
            if head["seq"] == last["seq"]:
                if head["row_hash"] != last["row_hash"]:
                    reason = "the head's hash is not the one the last checkpoint signed"
                    return Problem(reason, chain_id=chain_id, seq=head["seq"])
                continue
            if head["kind"] == "legacy":
                return Problem("the legacy chain is closed, and it has grown", chain_id=chain_id)
            if head["start_seq"] > last["seq"] + 1:
                reason = "the chain now starts after events written since the last checkpoint"
                return Problem(reason, chain_id=chain_id, seq=last["seq"] + 1)
            # From the event after the signed head: its prev_hash must be the signed hash.
            start = replace(start, start_seq=last["seq"] + 1, start_hash=last["row_hash"])
        rows = chain.rows_of(chain_id, start.start_seq, WALK_BATCH, through=head["seq"])
        walked = chain.verify(rows, start)
        if walked.problem is not None:
            return walked.problem
        if walked.seq != head["seq"]:
            reason = f"the events end at seq {walked.seq}, the chain's head says {head['seq']}"
            return Problem(reason, chain_id=chain_id, seq=walked.seq + 1)
        if walked.row_hash != head["row_hash"]:
            return Problem(
                "the chain head's hash does not match", chain_id=chain_id, seq=head["seq"]
            )
    return None


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
