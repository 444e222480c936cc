"""The evidence file: whole chains and the signed checkpoint that covers them.

An outside auditor verifies it with only the public key (`audit/offline.py`,
format in docs/audit.md). Lines, in order:

    {"format", "generated_at", "practice_id", "checkpoint": {... signature}, "leaves": [...]}
    {"chain": leaf, "index"}                  one per chain, then its events:
    {"event": {EVENT_FIELDS..., "prev_hash", "row_hash"}}
    {"other": {"seq", "practice_id", "content", "prev_hash", "row_hash"}}
    {"end": {"chains", "events"}}

A compliance officer gets the practice's chain and the legacy chain, in which
other practices' events appear as "other" (their practice and content hash,
nothing they say); a platform auditor gets every chain.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit import hashing, kinds
from audit.checkpoints import Frozen, file_record
from audit.models import AuditChain, AuditEvent
from audit.offline import FORMAT
from audit.services import audit_event_record, export_source, export_source_data
from ehr.policies import AuditScope, audit_scope

BATCH = 2000
EVENT_COLUMNS = ("prev_hash", "row_hash", *hashing.EVENT_FIELDS)


@dataclass(frozen=True)
class Evidence:
    checkpoint: int
    chains: int
    events: int
    content: Iterator[bytes]


def audit_evidence_export(*, acting_user: User, ip: str | None) -> Evidence:
    """Record the export, then hand back the file to stream (record first, as the CSV export).

    The file stops at a checkpoint taken now; the export's own event comes after
    it, so it is not in the file it describes. With a read replica, the events are
    read from it once it has replayed that checkpoint (`export_source`), and the
    event's data says which database they come from.
    """
    scope = audit_scope(acting_user)
    if scope not in {AuditScope.ALL, AuditScope.PRACTICE}:
        raise PermissionError("evidence files hold whole chains")
    practice_id = acting_user.practice_id if scope is AuditScope.PRACTICE else None
    frozen, source = export_source()
    chains = _chains_in_scope(frozen, scope, practice_id)
    events = sum(max(0, leaf["seq"] - leaf["start_seq"] + 1) for leaf in chains)
    with transaction.atomic():
        audit_event_record(
            kind=kinds.AUDIT_EVIDENCE_EXPORTED,
            acting_user=acting_user,
            account=acting_user,
            ip=ip,
            params={
                "events": events,
                "chains": len(chains),
                "checkpoint": frozen.checkpoint.number,
            },
            data={
                "events": events,
                "chains": len(chains),
                "checkpoint": frozen.checkpoint.number,
                **export_source_data(source),
            },
        )
    return Evidence(
        frozen.checkpoint.number,
        len(chains),
        events,
        _lines(frozen, chains, practice_id, source.alias),
    )


def _chains_in_scope(frozen: Frozen, scope: AuditScope, practice_id: int | None) -> list[dict]:
    leaves = [frozen.leaves[chain_id] for chain_id in sorted(frozen.leaves)]
    if scope is AuditScope.ALL:
        return leaves
    return [
        leaf
        for leaf in leaves
        if leaf["kind"] == AuditChain.Kind.LEGACY or leaf["practice_id"] == practice_id
    ]


def _json(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _lines(
    frozen: Frozen, chains: list[dict], practice_id: int | None, alias: str
) -> Iterator[bytes]:
    checkpoint = frozen.checkpoint
    ordered = sorted(frozen.leaves)
    position = {chain_id: index for index, chain_id in enumerate(ordered)}
    yield _json(
        {
            "format": FORMAT,
            "generated_at": hashing.timestamp(timezone.now()),
            "practice_id": practice_id,
            "checkpoint": file_record(checkpoint),
            # Every head the checkpoint signed, in the tree's order: the verifier rebuilds
            # the root from them and so knows which chains the file must hold.
            "leaves": [frozen.leaves[chain_id] for chain_id in ordered],
        }
    )
    shown = 0
    for leaf in chains:
        yield _json({"chain": leaf, "index": position[leaf["chain_id"]]})
        hide_others = practice_id is not None and leaf["kind"] == AuditChain.Kind.LEGACY
        for row in _events(leaf, alias):
            if hide_others and row["practice_id"] != practice_id:
                yield _json(
                    {
                        "other": {
                            "seq": row["seq"],
                            "practice_id": row["practice_id"],
                            "content": hashing.event_content(row),
                            "prev_hash": row["prev_hash"],
                            "row_hash": row["row_hash"],
                        }
                    }
                )
                continue
            row["occurred_at"] = hashing.timestamp(row["occurred_at"])
            shown += 1
            yield _json({"event": row})
    yield _json({"end": {"chains": len(chains), "events": shown}})


def _events(leaf: dict, alias: str) -> Iterator[dict]:
    """The chain's events from its start to the signed head, in batches, from database `alias`."""
    after = leaf["start_seq"] - 1
    while after < leaf["seq"]:
        batch = list(
            AuditEvent.objects.using(alias)
            .filter(chain_id=leaf["chain_id"], seq__gt=after, seq__lte=leaf["seq"])
            .order_by("seq")
            .values(*EVENT_COLUMNS)[:BATCH]
        )
        if not batch:
            return
        yield from batch
        after = batch[-1]["seq"]
