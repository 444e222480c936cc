"""Verify the whole log as its key holder: every chain, every checkpoint, and that they agree.

`manage.py audit_verify` runs this. Outsiders, with only the public key, verify
an evidence file instead (`audit/offline.py`).
"""

from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef

from audit import chain, checkpoints, hashing
from audit.chain import Problem
from audit.hashing import GENESIS_HASH
from audit.models import (
    AuditArchiveChain,
    AuditChain,
    AuditCheckpoint,
    AuditCheckpointLeaf,
    AuditEvent,
)


@dataclass(frozen=True)
class VerifyResult:
    events: int
    chains: int
    checkpoints: int
    latest_checkpoint: AuditCheckpoint | None
    uncovered: int  # events written since the latest checkpoint (keyed hash only)
    problem: Problem | None


def audit_log_verify(*, batch: int = 5000) -> VerifyResult:
    """Walk every chain from its start to its head, then every checkpoint."""
    events = 0
    chains = list(AuditChain.objects.order_by("id"))
    for audit_chain in chains:
        walked = _verify_chain(audit_chain, batch)
        events += walked.checked
        if walked.problem is not None:
            return VerifyResult(events, len(chains), 0, None, 0, walked.problem)
    counted, latest, problem = _verify_checkpoints({c.pk: c for c in chains})
    if problem is None:
        problem = _boundary_problem(chains)
    uncovered = 0
    if problem is None:
        covered = checkpoints.checkpoint_leaves(latest.number) if latest else {}
        uncovered = sum(
            c.seq - max(covered[c.pk]["seq"] if c.pk in covered else 0, c.start_seq - 1)
            for c in chains
        )
    return VerifyResult(events, len(chains), counted, latest, uncovered, problem)


def _verify_chain(audit_chain: AuditChain, batch: int) -> chain.WalkEnd:
    start = chain.ChainStart(
        chain_id=audit_chain.pk,
        kind=audit_chain.kind,
        practice_id=audit_chain.practice_id,
        start_seq=audit_chain.start_seq,
        start_hash=audit_chain.start_hash,
        start_mac=audit_chain.start_mac,
    )
    walked = chain.verify(chain.rows_of(audit_chain.pk, audit_chain.start_seq, batch), start)
    if walked.problem is not None:
        return walked
    problem = None
    if walked.seq != audit_chain.seq:
        problem = Problem(
            f"the chain head says seq {audit_chain.seq}, the events end at {walked.seq}"
            + (": events at the end were deleted" if walked.seq < audit_chain.seq else ""),
            chain_id=audit_chain.pk,
            seq=min(walked.seq, audit_chain.seq) + 1,
        )
    elif walked.row_hash != audit_chain.row_hash:
        problem = Problem(
            "the chain head's hash does not match", chain_id=audit_chain.pk, seq=audit_chain.seq
        )
    return chain.WalkEnd(walked.checked, walked.seq, walked.row_hash, problem)


def _verify_checkpoints(chains: dict[int, AuditChain]):
    """Check each checkpoint's place, hash, signature and Merkle root, then its heads.

    Returns (checkpoints checked, the newest, first problem).
    """
    keys = checkpoints.trusted_public_keys()
    leaves: dict[int, dict] = {}
    prev_hash, latest, counted = GENESIS_HASH, None, 0
    changes = AuditCheckpointLeaf.objects.order_by("checkpoint_id", "chain_id").values(
        "checkpoint_id", "chain_id", "start_seq", "start_hash", "seq", "row_hash"
    )
    pending = iter(changes.iterator(chunk_size=2000))
    change = next(pending, None)
    for number, checkpoint in enumerate(
        AuditCheckpoint.objects.order_by("number").iterator(chunk_size=500), start=1
    ):

        def problem(reason: str, *, number=checkpoint.number, counted=counted, latest=latest):
            return counted, latest, Problem(reason, checkpoint=number)

        header = checkpoints.header_of(checkpoint)
        if checkpoint.number != number:
            return problem(f"expected checkpoint {number}: checkpoints are missing")
        if checkpoint.prev_hash != prev_hash:
            return problem("it does not name the checkpoint before it")
        if checkpoint.checkpoint_hash != hashing.checkpoint_hash(header):
            return problem("its content does not match its hash (edited)")
        key = keys.get(checkpoint.key_id)
        if key is None:
            return problem(f"signed by an unknown key {checkpoint.key_id!r}")
        if not hashing.signature_valid(key, header, checkpoint.signature):
            return problem("its signature is not valid (forged or edited)")
        while change is not None and change["checkpoint_id"] <= checkpoint.pk:
            if change["checkpoint_id"] == checkpoint.pk:
                owner = chains.get(change["chain_id"])
                if owner is None:
                    return problem(f"it signed chain {change['chain_id']}, which is gone")
                leaves[change["chain_id"]] = checkpoints.leaf_of(
                    {
                        **change,
                        "id": change["chain_id"],
                        "kind": owner.kind,
                        "practice_id": owner.practice_id,
                    }
                )
            change = next(pending, None)
        ordered = [hashing.leaf_bytes(leaves[chain_id]) for chain_id in sorted(leaves)]
        if len(ordered) != checkpoint.chain_count or hashing.merkle_root(ordered) != (
            checkpoint.merkle_root
        ):
            return problem("the chain heads stored with it do not match its signed Merkle root")
        prev_hash, latest, counted = checkpoint.checkpoint_hash, checkpoint, counted + 1
    mismatch = _leaf_not_in_chain()
    if mismatch is not None:
        return counted, latest, mismatch
    return counted, latest, None


def _leaf_not_in_chain() -> Problem | None:
    """A checkpointed head that the chain no longer holds: the chain was rewritten or cut."""
    event_there = AuditEvent.objects.filter(
        chain_id=OuterRef("chain_id"), seq=OuterRef("seq"), row_hash=OuterRef("row_hash")
    )
    kept = AuditCheckpointLeaf.objects.filter(seq__gte=F("chain__start_seq"))
    checks = (
        (
            kept.exclude(Exists(event_there)),
            "the chain no longer holds the event this checkpoint signed at seq {seq} "
            "(rewritten or deleted)",
        ),
        (
            AuditCheckpointLeaf.objects.filter(seq__gt=F("chain__seq")),
            "the chain's head is behind what this checkpoint signed (seq {seq})",
        ),
        (
            AuditCheckpointLeaf.objects.filter(seq=F("chain__start_seq") - 1, seq__gt=0).exclude(
                row_hash=F("chain__start_hash")
            ),
            "the chain's start does not match what this checkpoint signed (seq {seq})",
        ),
    )
    for leaves, reason in checks:
        bad = (
            leaves.order_by("checkpoint__number")
            .values("checkpoint__number", "chain_id", "seq")
            .first()
        )
        if bad is not None:
            return Problem(
                reason.format(seq=bad["seq"]),
                chain_id=bad["chain_id"],
                seq=bad["seq"],
                checkpoint=bad["checkpoint__number"],
            )
    return None


def _boundary_problem(chains: list[AuditChain]) -> Problem | None:
    """Each chain must start where its newest archive ended, as a checkpoint signed it.

    Only `audit_archive` moves a chain's start (past the events it dropped), and
    it signs the new start in a checkpoint at once. A start moved any other way
    (to hide the events before it), or an archive boundary edited to match, is
    named here; the walk itself checks that the first live event links to it.
    """
    newest: dict[int, AuditArchiveChain] = {}
    for cut in AuditArchiveChain.objects.select_related("archive").order_by("last_seq"):
        newest[cut.chain_id] = cut
    signed: dict[int, dict[int, dict]] = {}
    for audit_chain in chains:
        cut = newest.get(audit_chain.pk)
        if cut is None:
            # The legacy chain may start later: migration 0003 kept a signed anchor.
            if audit_chain.start_seq != 1 and audit_chain.kind != AuditChain.Kind.LEGACY:
                return Problem(
                    f"the chain starts at seq {audit_chain.start_seq}, but no archive holds "
                    "the events before it",
                    chain_id=audit_chain.pk,
                    seq=audit_chain.start_seq,
                )
            continue
        where = f"the archive of {cut.archive.month:%Y-%m}"
        if (audit_chain.start_seq, audit_chain.start_hash) != (cut.last_seq + 1, cut.last_hash) or (
            audit_chain.kind == AuditChain.Kind.LEGACY and audit_chain.start_mac != cut.last_mac
        ):
            return Problem(
                f"the chain's start does not match where {where} ended (seq {cut.last_seq})",
                chain_id=audit_chain.pk,
                seq=audit_chain.start_seq,
            )
        number = cut.archive.boundary_checkpoint
        if number not in signed:
            signed[number] = checkpoints.checkpoint_leaves(number)
        leaf = signed[number].get(audit_chain.pk)
        if leaf is None or (leaf["start_seq"], leaf["start_hash"]) != (
            cut.last_seq + 1,
            cut.last_hash,
        ):
            return Problem(
                f"the boundary of {where} is not the one checkpoint {number} signed",
                chain_id=audit_chain.pk,
                seq=cut.last_seq + 1,
                checkpoint=number,
            )
    return None
