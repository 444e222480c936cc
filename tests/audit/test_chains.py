"""One chain per practice, signed checkpoints, and what an outsider verifies with the public key."""

import base64
import hashlib
import io
import json
import threading
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Practice
from accounts.roles import Role
from audit import chain, checkpoints, hashing, kinds, offline
from audit.models import (
    AuditChain,
    AuditCheckpoint,
    AuditCheckpointLeaf,
    AuditEvent,
    AuditVerification,
)
from audit.services import audit_event_record
from audit.verification import audit_log_verify
from tests.audit.helpers import sql, verify_fails
from tests.audit.test_chain import PREV_HASH, vector_row
from tests.conftest import audit_guards
from tests.factories import confirm_identity, make_user

# Known answers, written out literally: stored hashes and signed checkpoints must
# verify for as long as the log is kept, so neither form may ever change.
V2_CANONICAL = (
    b'[7,4711,"2024-03-09T17:05:42.123456Z",12,"496094 (dorothy Ludwig)",34,'
    b'"rn.okafor (Ngozi Okafor)",3,"P-000123","Zo\xc3\xab \\"Bo\\" \xc3\x85ngstr\xc3\xb6m",'
    b'"support_pin.validated","Account","Validate","Support PIN validated for dorothy Ludwig",'
    b'"2001:db8::7","Mozilla/5.0 (X11; Linux x86_64)","9f2c1e0a5b7d4c3e8f1a2b3c4d5e6f70",'
    b'{"agent":12,"note":null,"ok":true,"rows":51}]'
)


def v2_row() -> dict:
    return {**vector_row(), "chain_id": 7}


def test_event_hash_known_answer():
    assert hashing.event_canonical(v2_row()) == V2_CANONICAL
    content = hashlib.sha256(V2_CANONICAL).hexdigest()
    expected = hashlib.sha256(f"ehr-audit-event/2\n{PREV_HASH}\n3\n{content}".encode()).hexdigest()
    assert hashing.row_hash(v2_row(), prev_hash=PREV_HASH) == expected
    other = {**v2_row(), "chain_id": 8}
    assert hashing.row_hash(other, prev_hash=PREV_HASH) != expected


def test_checkpoint_message_known_answer():
    header = {
        "number": 5,
        "created_at": "2024-03-09T17:05:42.123456Z",
        "prev_hash": PREV_HASH,
        "merkle_root": "ab" * 32,
        "chain_count": 3,
    }
    assert hashing.checkpoint_message(header) == (
        b"ehr-audit-checkpoint/1\n"
        b'{"chains":3,"created_at":"2024-03-09T17:05:42.123456Z","number":5,'
        b'"prev":"' + PREV_HASH.encode() + b'","root":"' + b"ab" * 32 + b'"}'
    )


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, as written there: split at the largest power of two."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:])).digest()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_merkle_tree_is_rfc_6962_and_every_path_leads_to_the_root(size):
    leaves = [f"leaf {i}".encode() for i in range(size)]
    levels = hashing.merkle_levels(leaves)
    root = hashing.merkle_root(leaves)
    assert root == rfc6962_root(leaves).hex()
    for index, leaf in enumerate(leaves):
        path = hashing.merkle_path(levels, index)
        assert hashing.merkle_path_root(leaf, index, size, path) == root
        assert hashing.merkle_path_root(b"forged", index, size, path) != root
        if size > 1:
            assert hashing.merkle_path_root(leaf, (index + 1) % size, size, path) != root


# Chains


def test_each_practice_writes_its_own_chain_and_the_rest_the_platforms(
    provider, other_provider, agent
):
    mine = audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    theirs = audit_event_record(
        kind=kinds.SIGNED_IN, acting_user=other_provider, account=other_provider, ip=None
    )
    platform = audit_event_record(kind=kinds.SIGNED_IN, acting_user=agent, account=agent, ip=None)
    assert AuditChain.objects.get(pk=mine.chain_id).practice_id == provider.practice_id
    assert AuditChain.objects.get(pk=theirs.chain_id).practice_id == other_provider.practice_id
    assert AuditChain.objects.get(pk=platform.chain_id).kind == AuditChain.Kind.PLATFORM
    assert len({mine.chain_id, theirs.chain_id, platform.chain_id}) == 3
    # Each follows its own chain's head: the platform's events do not number the practices'.
    heads = {mine.chain_id: mine.seq, theirs.chain_id: theirs.seq, platform.chain_id: platform.seq}
    for chain_id, seq in heads.items():
        assert AuditEvent.objects.filter(chain_id=chain_id, seq=seq - 1).exists() or seq == 1
        assert not AuditEvent.objects.filter(chain_id=chain_id, seq__gt=seq).exists()
    assert audit_log_verify().problem is None


def test_an_unknown_username_goes_to_the_platform_chain(client, db):
    client.post("/accounts/login/", {"username": "nobody-here", "password": "x"})
    event = AuditEvent.objects.get(kind=kinds.SIGN_IN_FAILED_UNKNOWN.code)
    assert event.practice_id is None
    assert AuditChain.objects.get(pk=event.chain_id).kind == AuditChain.Kind.PLATFORM


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_writer_waits_for_its_own_practice_only(practice, other_practice):
    """One practice's transaction holds its chain until it ends; another practice's
    writer goes on meanwhile, and a writer of the same practice waits its turn."""
    holder, neighbour, colleague = (
        make_user(Role.NURSE, practice=place) for place in (practice, other_practice, practice)
    )
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                audit_event_record(
                    kind=kinds.SIGNED_IN, acting_user=holder, account=holder, ip=None
                )
                held.set()
                release.wait(30)
        finally:
            connection.close()

    def write(user) -> str:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '1s'")
                audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=None)
        except DatabaseError as error:
            return str(error)
        return "written"

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert write(neighbour) == "written"
        assert "lock timeout" in write(colleague)
    finally:
        release.set()
        thread.join()
    assert write(colleague) == "written"
    assert audit_log_verify().problem is None


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_check_before_an_archive_waits_for_a_checkpoint_being_signed(provider):
    """It reads the last checkpoint and the chains in one turn with the signers, so no
    archive's moved starts are seen without the checkpoint that signs them."""
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    held, release = threading.Event(), threading.Event()

    def sign_slowly():
        try:
            with transaction.atomic():
                checkpoints._take_turns()
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=sign_slowly)
    thread.start()
    try:
        assert held.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '500ms'")
        with pytest.raises(DatabaseError, match="lock timeout"):
            checkpoints.audit_checkpoint_check()
    finally:
        release.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert checkpoints.audit_checkpoint_check() is None


@pytest.fixture
def written(provider, other_provider, agent):
    for user in (provider, other_provider, agent, provider, other_provider):
        audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip="192.0.2.7")
    return list(AuditEvent.objects.order_by("id"))


def test_a_checkpoint_signs_every_head_and_is_reused_while_nothing_moves(written, provider, capsys):
    call_command("audit_checkpoint")
    first = AuditCheckpoint.objects.get()
    assert first.number == 1 and first.chain_count == AuditChain.objects.count()
    call_command("audit_checkpoint")
    assert AuditCheckpoint.objects.count() == 1
    assert "No chain moved" in capsys.readouterr().out
    moved = audit_event_record(
        kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None
    )
    call_command("audit_checkpoint")
    second = AuditCheckpoint.objects.get(number=2)
    assert second.prev_hash == first.checkpoint_hash
    # Only the chain that moved gets a new leaf.
    assert list(
        AuditCheckpointLeaf.objects.filter(checkpoint=second).values_list("chain_id", flat=True)
    ) == [moved.chain_id]
    result = audit_log_verify()
    assert result.problem is None
    assert (result.checkpoints, result.latest_checkpoint, result.uncovered) == (2, second, 0)
    public = checkpoints.signing_key()[1].public_key()
    assert hashing.signature_valid(public, checkpoints.header_of(second), second.signature)


def test_the_public_key_is_printed_for_outsiders(capsys, settings):
    call_command("audit_public_key")
    line = capsys.readouterr().out.strip()
    key_id, _, encoded = line.partition(":")
    assert key_id == settings.AUDIT_SIGNING_KEY.current_id
    seed = settings.AUDIT_SIGNING_KEY.current
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    assert hashing.parse_public_keys(line)[key_id].public_bytes_raw() == expected.public_bytes_raw()
    assert seed not in base64.urlsafe_b64decode(encoded + "==")


def test_a_rotated_key_keeps_old_checkpoints_verifiable(written, provider, settings):
    from ehr.keys import KeyRing

    call_command("audit_checkpoint")
    old_id, old = checkpoints.signing_key()
    new_seed = bytes(range(32))
    settings.AUDIT_SIGNING_KEY = KeyRing(current_id="k2", keys={"k2": new_seed})
    # The old private key is gone; its public half stays trusted.
    settings.AUDIT_SIGNING_PUBLIC_KEYS = {old_id: old.public_key()}
    audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
    call_command("audit_checkpoint")
    assert AuditCheckpoint.objects.get(number=2).key_id == "k2"
    assert audit_log_verify().problem is None
    settings.AUDIT_SIGNING_PUBLIC_KEYS = {}
    problem = audit_log_verify().problem
    assert problem.checkpoint == 1 and "unknown key" in problem.reason


# Tampering, with the guards dropped: every change is named.


@pytest.fixture
def unguarded(written):
    call_command("audit_checkpoint")
    audit_guards(install=False)
    yield written
    audit_guards(install=True)


def test_the_database_refuses_changes_to_checkpoints(written):
    call_command("audit_checkpoint")
    for statement in (
        "UPDATE audit_auditcheckpoint SET merkle_root = 'x'",
        "DELETE FROM audit_auditcheckpoint",
        "UPDATE audit_auditcheckpointleaf SET row_hash = 'x'",
        "DELETE FROM audit_auditcheckpointleaf",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            sql(statement)


def test_an_event_moved_to_another_chain_is_found(unguarded):
    moved = unguarded[0]
    other = unguarded[1]
    sql(
        "UPDATE audit_auditevent SET chain_id = %s, seq = %s WHERE id = %s",
        [other.chain_id, 1000, moved.pk],
    )
    message = verify_fails("events are missing|another practice|expected seq")
    assert f"chain {moved.chain_id}" in message or f"chain {other.chain_id}" in message


def test_an_event_given_another_practice_is_found(unguarded, other_practice):
    target = unguarded[0]
    sql(
        "UPDATE audit_auditevent SET practice_id = %s WHERE id = %s", [other_practice.pk, target.pk]
    )
    verify_fails(f"chain {target.chain_id} seq {target.seq}.*another practice")


def rewrite_chain(chain_id: int, *, add: int = 0) -> str:
    """Rewrite a whole chain consistently, as someone holding the HMAC key could, and
    `add` events at its end; move its head there. Return the new head's hash."""
    rows = list(
        AuditEvent.objects.filter(chain_id=chain_id)
        .order_by("seq")
        .values("id", "key_id", *hashing.EVENT_FIELDS)
    )
    prev = hashing.GENESIS_HASH
    for row in rows:
        row["details"] = "Nothing happened"
        digest = hashing.row_hash(row, prev_hash=prev)
        mac = chain.event_mac(digest, key=chain.verification_key(row["key_id"]))
        sql(
            "UPDATE audit_auditevent SET details = %s, prev_hash = %s, row_hash = %s, mac = %s "
            "WHERE id = %s",
            [row["details"], prev, digest, mac, row["id"]],
        )
        prev = digest
    for _ in range(add):
        prev = append_event(chain_id, prev, with_key=True)
    sql(
        "UPDATE audit_auditchain SET seq = %s, row_hash = %s WHERE id = %s",
        [len(rows) + add, prev, chain_id],
    )
    return prev


def append_event(chain_id: int, prev: str, *, with_key: bool) -> str:
    """Insert one more event at the end of a chain behind the app's back; return its hash."""
    last = AuditEvent.objects.filter(chain_id=chain_id).order_by("-seq").first()
    row = {
        name: getattr(last, name)
        for name in (*hashing.EVENT_FIELDS, "actor_id", "account_id", "key_id")
    }
    row |= {"seq": last.seq + 1, "details": "Signed in, they say"}
    digest = hashing.row_hash(row, prev_hash=prev)
    key = chain.verification_key(row["key_id"]) if with_key else b"not the key"
    AuditEvent.objects.create(
        **row, prev_hash=prev, row_hash=digest, mac=chain.event_mac(digest, key=key)
    )
    return digest


def test_a_chain_rewritten_with_both_keys_after_a_checkpoint_is_found(unguarded):
    """Someone holding the HMAC key rewrites a whole chain consistently: the checkpoint tells."""
    target = unguarded[0]
    rewrite_chain(target.chain_id)
    message = verify_fails("no longer holds the event this checkpoint signed")
    assert f"checkpoint 1, chain {target.chain_id} seq " in message


# The signer signs only what extends the last checkpoint: a rewritten chain is never
# signed, so no evidence file can carry it (the file holds one checkpoint).


def refused_checkpoint(match: str) -> AuditVerification:
    with pytest.raises(CommandError, match=f"Nothing signed: at {match}"):
        call_command("audit_checkpoint")
    assert AuditCheckpoint.objects.count() == 1
    return AuditVerification.objects.order_by("-pk").first()


def test_a_rewritten_chain_is_never_signed_and_the_finding_is_kept_once(unguarded):
    target = unguarded[0]
    length = AuditEvent.objects.filter(chain_id=target.chain_id).count()
    rewrite_chain(target.chain_id)

    finding = refused_checkpoint(
        f"chain {target.chain_id} seq {length}, the head's hash is not the one the last "
        "checkpoint signed"
    )
    assert finding.intact is False
    assert finding.problem == (
        f"chain {target.chain_id} seq {length}: the head's hash is not the one the last checkpoint "
        "signed (found signing a checkpoint: none signed; last: checkpoint 1)"
    )
    failed = AuditEvent.objects.get(kind=kinds.AUDIT_VERIFICATION_FAILED.code)
    assert failed.data == {"verification": finding.pk}
    # Minute after minute the same refusal, and the same one finding.
    refused_checkpoint(f"chain {target.chain_id} seq {length}")
    assert AuditEvent.objects.filter(kind=kinds.AUDIT_VERIFICATION_FAILED.code).count() == 1


def test_a_rewritten_chain_that_grew_is_never_signed(unguarded):
    target = unguarded[0]
    length = AuditEvent.objects.filter(chain_id=target.chain_id).count()
    rewrite_chain(target.chain_id, add=2)
    refused_checkpoint(
        f"chain {target.chain_id} seq {length + 1} .row id \\d+., prev_hash does not match"
    )


def test_a_chain_cut_short_is_never_signed(unguarded):
    target = unguarded[0]
    length = AuditEvent.objects.filter(chain_id=target.chain_id).count()
    before = AuditEvent.objects.get(chain_id=target.chain_id, seq=length - 1)
    sql("DELETE FROM audit_auditevent WHERE chain_id = %s AND seq = %s", [target.chain_id, length])
    sql(
        "UPDATE audit_auditchain SET seq = %s, row_hash = %s WHERE id = %s",
        [length - 1, before.row_hash, target.chain_id],
    )
    refused_checkpoint(
        f"chain {target.chain_id} seq {length}, the chain ends at seq {length - 1}, the last "
        f"checkpoint signed it to {length}"
    )


@pytest.mark.parametrize("with_key", [False, True])
def test_only_events_written_with_the_key_after_the_checkpoint_are_signed(unguarded, with_key):
    """Since the last checkpoint only the keyed hash vouches for events: one without the
    key is not signed into the log; one with it is, as any event the app writes."""
    target = unguarded[0]
    head = AuditChain.objects.get(pk=target.chain_id)
    new_head = append_event(target.chain_id, head.row_hash, with_key=with_key)
    sql(
        "UPDATE audit_auditchain SET seq = seq + 1, row_hash = %s WHERE id = %s",
        [new_head, target.chain_id],
    )
    if with_key:
        call_command("audit_checkpoint")
        assert AuditCheckpoint.objects.count() == 2
    else:
        refused_checkpoint(
            f"chain {target.chain_id} seq {head.seq + 1} .row id \\d+., the keyed hash does not "
            "match"
        )


def _edit_leaf(chain_id: int, head: str) -> None:
    sql("UPDATE audit_auditcheckpointleaf SET row_hash = %s WHERE chain_id = %s", [head, chain_id])


def _drop_leaf(chain_id: int, head: str) -> None:
    sql("DELETE FROM audit_auditcheckpointleaf WHERE chain_id = %s", [chain_id])


def _edit_root(chain_id: int, head: str) -> None:
    """The stored head edited, and the checkpoint's root made to match it."""
    _edit_leaf(chain_id, head)
    leaves = checkpoints.checkpoint_leaves(1)
    root = hashing.merkle_root([hashing.leaf_bytes(leaves[c]) for c in sorted(leaves)])
    sql("UPDATE audit_auditcheckpoint SET merkle_root = %s", [root])


def _name_another_key(chain_id: int, head: str) -> None:
    """The root made to match as above, and the checkpoint said to be signed by a key that
    is no one's (its id is outside the checkpoint's hash)."""
    _edit_root(chain_id, head)
    checkpoint = AuditCheckpoint.objects.get()
    sql(
        "UPDATE audit_auditcheckpoint SET key_id = 'nobody', checkpoint_hash = %s",
        [hashing.checkpoint_hash(checkpoints.header_of(checkpoint))],
    )


def _add_checkpoint(chain_id: int, head: str) -> None:
    """A checkpoint 2 written without the signing key, naming the rewritten head."""
    last = AuditCheckpoint.objects.get()
    header = {**checkpoints.header_of(last), "number": 2, "prev_hash": last.checkpoint_hash}
    made_up = AuditCheckpoint.objects.create(
        **header,
        key_id=last.key_id,
        signature=last.signature,
        checkpoint_hash=hashing.checkpoint_hash(header),
    )
    leaf = AuditCheckpointLeaf.objects.filter(chain_id=chain_id).get()
    AuditCheckpointLeaf.objects.create(
        checkpoint=made_up,
        chain_id=chain_id,
        start_seq=leaf.start_seq,
        start_hash=leaf.start_hash,
        seq=leaf.seq,
        row_hash=head,
    )


@pytest.mark.parametrize(
    "cover, reason",
    [
        (_edit_leaf, "the chain heads stored with the last checkpoint are not the ones it signed"),
        (_drop_leaf, "the chain heads stored with the last checkpoint are not the ones it signed"),
        (_add_checkpoint, "the last checkpoint's signature is not valid"),
        (_edit_root, "the last checkpoint's content does not match its hash"),
        (_name_another_key, "the last checkpoint is signed by an unknown key 'nobody'"),
    ],
)
def test_a_rewrite_covered_by_editing_what_the_checkpoint_stored_is_never_signed(
    unguarded, cover, reason
):
    """The signer holds chains to the heads stored with the last checkpoint: those rows
    are held to its signature first, or a rewrite would pass by editing them too."""
    target = unguarded[0]
    cover(target.chain_id, rewrite_chain(target.chain_id))
    number = AuditCheckpoint.objects.order_by("-number").first().number
    with pytest.raises(CommandError, match=f"Nothing signed: at checkpoint {number}, {reason}"):
        call_command("audit_checkpoint")
    assert AuditCheckpoint.objects.count() == number


def test_a_start_moved_past_deleted_events_is_never_signed(unguarded):
    """No key needed: the chain's first events deleted and its start moved past them, as if
    an archive had taken them."""
    target = unguarded[0]
    second = AuditEvent.objects.get(chain_id=target.chain_id, seq=2)
    sql("DELETE FROM audit_auditevent WHERE chain_id = %s AND seq = 1", [target.chain_id])
    sql(
        "UPDATE audit_auditchain SET start_seq = 2, start_hash = %s WHERE id = %s",
        [second.prev_hash, target.chain_id],
    )
    refused_checkpoint(
        f"chain {target.chain_id} seq 2, the chain's start moved from seq 1 to 2, and no "
        "archive moved it"
    )


def test_no_export_leaves_a_log_that_contradicts_its_checkpoint(unguarded, client, auditor):
    rewrite_chain(unguarded[0].chain_id)
    client.force_login(auditor)
    confirm_identity(client)
    for path in ("/audit/evidence.jsonl", "/audit/export.csv", "/audit/export.fhir.json"):
        response = client.get(path, follow=True)
        assert response.redirect_chain == [("/audit/", 302)], path
        assert "Nothing was exported: the audit log no longer matches" in response.text
    assert AuditCheckpoint.objects.count() == 1
    assert not AuditEvent.objects.filter(
        kind__in=[kinds.AUDIT_EXPORTED.code, kinds.AUDIT_EVIDENCE_EXPORTED.code]
    ).exists()
    assert AuditVerification.objects.get().intact is False


def _head(chain_id: int, **fields) -> dict:
    head = {
        "id": chain_id,
        "kind": "practice",
        "practice_id": None,
        "start_seq": 1,
        "start_hash": hashing.GENESIS_HASH,
        "start_mac": hashing.GENESIS_HASH,
        "seq": 3,
        "row_hash": "a" * 64,
    }
    return head | fields


@pytest.mark.parametrize(
    ("heads", "signed", "moved", "reason"),
    [
        ([], {7: _head(7)}, {}, "chain 7: the chain, signed by the last checkpoint, is gone"),
        (
            [_head(7, kind="legacy", seq=4)],
            {7: _head(7, kind="legacy")},
            {},
            "chain 7: the legacy chain is closed, and it has grown",
        ),
        (
            [_head(7, seq=9, start_seq=6, start_hash="b" * 64)],
            {7: _head(7)},
            {7: (6, "b" * 64)},
            "chain 7 seq 4: the chain now starts after events written since the last checkpoint",
        ),
        (
            [_head(7, start_seq=2, start_hash="b" * 64)],
            {7: _head(7)},
            {},
            "chain 7 seq 2: the chain's start moved from seq 1 to 2, and no archive moved it",
        ),
        (
            [_head(7, start_seq=2, start_hash="b" * 64)],
            {7: _head(7)},
            {7: (2, "c" * 64)},
            "chain 7 seq 2: the chain's start moved from seq 1 to 2, and no archive moved it",
        ),
        (
            [_head(7, start_seq=3, start_hash="b" * 64, seq=2)],
            {},
            {},
            "chain 7 seq 3: the chain's start moved from seq 1 to 3, and no archive moved it",
        ),
        ([_head(7)], {7: _head(7)}, {}, None),
    ],
)
def test_what_no_walk_can_mend(db, heads, signed, moved, reason):
    problem = checkpoints.extension_problem(heads, signed, moved)
    assert (f"{problem.where()}: {problem.reason}" if problem else None) == reason


def test_a_forged_checkpoint_is_found(unguarded):
    checkpoint = AuditCheckpoint.objects.get()
    forger = Ed25519PrivateKey.generate()
    header = {**checkpoints.header_of(checkpoint), "merkle_root": "0" * 64}
    sql(
        "UPDATE audit_auditcheckpoint SET merkle_root = %s, signature = %s, checkpoint_hash = %s",
        [
            header["merkle_root"],
            hashing.b64(forger.sign(hashing.checkpoint_message(header))),
            hashing.checkpoint_hash(header),
        ],
    )
    verify_fails("checkpoint 1: its signature is not valid")


def test_an_edited_checkpoint_leaf_is_found(unguarded):
    sql(
        "UPDATE audit_auditcheckpointleaf SET seq = seq + 1 WHERE id = (SELECT min(id) FROM audit_auditcheckpointleaf)"
    )
    verify_fails("checkpoint 1: the chain heads stored with it do not match its signed Merkle root")


@pytest.mark.parametrize(
    "column, reason",
    [
        ("prev_hash", "prev_hash does not match the previous event"),
        ("row_hash", "content does not match its hash"),
        ("mac", "the keyed hash does not match"),
    ],
)
def test_a_hash_no_event_could_hold_is_named_not_a_crash(unguarded, column, reason):
    """Text beyond ASCII, which constant-time comparison refuses with an error."""
    target = unguarded[0]
    sql(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", ["é" * 64, target.pk])  # noqa: S608
    verify_fails(f"chain {target.chain_id} seq {target.seq} .row id {target.pk}.: {reason}")
    # Written since the last checkpoint, the signer names it too.
    head = AuditChain.objects.get(pk=target.chain_id)
    added = append_event(target.chain_id, head.row_hash, with_key=True)
    sql(
        "UPDATE audit_auditchain SET seq = seq + 1, row_hash = %s WHERE id = %s",
        [added, target.chain_id],
    )
    sql(f"UPDATE audit_auditevent SET {column} = %s WHERE row_hash = %s", ["é" * 64, added])  # noqa: S608
    refused_checkpoint(f"chain {target.chain_id} seq {head.seq + 1} .row id \\d+., {reason}")


@pytest.mark.sqlite_only
def test_an_event_whose_time_is_not_one_is_named_not_a_crash(unguarded):
    target = unguarded[0]
    sql("UPDATE audit_auditevent SET occurred_at = 'garbage' WHERE id = %s", [target.pk])
    verify_fails(
        f"chain {target.chain_id} seq {target.seq} .row id {target.pk}.: the event's columns "
        "cannot be read"
    )


def test_a_signed_chain_gone_from_the_table_is_named_not_a_crash(unguarded):
    """Its id changed or its row deleted (the foreign keys dropped first)."""
    from audit.verification import _verify_checkpoints

    gone = unguarded[0].chain_id
    chains = {c.pk: c for c in AuditChain.objects.exclude(pk=gone)}
    _counted, _latest, problem = _verify_checkpoints(chains)
    assert (problem.checkpoint, problem.reason) == (1, f"it signed chain {gone}, which is gone")


def test_a_deleted_checkpoint_in_the_middle_is_found(unguarded, provider):
    for _ in range(2):
        audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
        call_command("audit_checkpoint")
    sql(
        "DELETE FROM audit_auditcheckpointleaf WHERE checkpoint_id = (SELECT id FROM audit_auditcheckpoint WHERE number = 2)"
    )
    sql("DELETE FROM audit_auditcheckpoint WHERE number = 2")
    verify_fails("checkpoint 3: expected checkpoint 2")


# Evidence files, verified with nothing but the public key


def public_key_arg() -> str:
    return checkpoints.public_key_lines(all_keys=False)[0]


def download(client, user) -> bytes:
    client.force_login(user)
    confirm_identity(client)
    response = client.get("/audit/evidence.jsonl")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/x-ndjson"
    return b"".join(response.streaming_content)


def verified(data: bytes, key: str | None = None) -> offline.Report:
    keys = offline.load_public_keys([key or public_key_arg()])
    return offline.verify_evidence(io.BytesIO(data).readlines(), keys)


@pytest.fixture
def officer(practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="officer")


def test_an_officers_evidence_file_verifies_offline_and_holds_only_the_practice(
    client, written, officer, tmp_path, capsys
):
    data = download(client, officer)
    report = verified(data)
    assert report.problem is None, report.problem
    records = [json.loads(line) for line in data.splitlines()]
    chains = [r["chain"] for r in records if "chain" in r]
    assert [c["practice_id"] for c in chains] == [officer.practice_id]
    events = [r["event"] for r in records if "event" in r]
    assert events and {e["practice_id"] for e in events} == {officer.practice_id}
    assert (
        report.events
        == len(events)
        == AuditEvent.objects.filter(
            chain_id=chains[0]["chain_id"], seq__lte=chains[0]["seq"]
        ).count()
    )
    # The download itself is recorded, after the checkpoint it names.
    event = AuditEvent.objects.get(kind=kinds.AUDIT_EVIDENCE_EXPORTED.code)
    assert event.data["checkpoint"] == records[0]["checkpoint"]["number"]
    assert event.seq > chains[0]["seq"]
    # The command does the same from a file.
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(data)
    call_command("audit_verify", file=str(path), public_key=[public_key_arg()])
    assert "Evidence verified" in capsys.readouterr().out


@pytest.fixture
def auditor(db):
    return make_user(Role.PLATFORM_AUDITOR, username="auditor")


def test_an_auditors_evidence_file_holds_every_chain(client, written, auditor):
    data = download(client, auditor)
    report = verified(data)
    assert report.problem is None, report.problem
    assert report.events == AuditEvent.objects.count() - 1  # all but the download's own event


def test_evidence_is_refused_to_those_who_read_less_than_a_practice(client, written, provider):
    client.force_login(provider)
    confirm_identity(client)
    assert client.get("/audit/evidence.jsonl").status_code == 403


def lines_of(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def joined(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _event_indexes(records):
    return [i for i, r in enumerate(records) if "event" in r]


def _edit(records):
    records[_event_indexes(records)[1]]["event"]["details"] = "Nothing happened"


def _drop(records):
    del records[_event_indexes(records)[1]]


def _insert(records):
    i = _event_indexes(records)[1]
    records.insert(i, json.loads(json.dumps(records[i])))


def _reorder(records):
    a, b = _event_indexes(records)[:2]
    records[a], records[b] = records[b], records[a]


def _move(records):
    records[_event_indexes(records)[0]]["event"]["chain_id"] += 1


def _truncate(records):
    del records[-1]


def _forge_head(records):
    for r in records:
        if "chain" in r:
            r["chain"]["seq"] -= 1
            break


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (_edit, "content does not match its hash"),
        (_drop, "events dropped"),
        (_insert, "out of order"),
        (_reorder, "expected seq"),
        (_move, "names chain"),
        (_truncate, "cut short"),
        (_forge_head, "not one the checkpoint signed"),
    ],
)
def test_a_tampered_evidence_file_fails(client, written, officer, tamper, reason):
    records = lines_of(download(client, officer))
    tamper(records)
    report = verified(joined(records))
    assert report.problem is not None and reason in report.problem, report.problem


def _without_chain(records: list[dict], chain_id: int) -> list[dict]:
    """The file with one chain's section cut out and its closing counts made to agree."""
    kept, skipping = [], False
    for record in records:
        if "chain" in record:
            skipping = record["chain"]["chain_id"] == chain_id
        elif "end" in record:
            skipping = False
        if not skipping:
            kept.append(record)
    kept[-1]["end"] = {
        "chains": sum("chain" in r for r in kept),
        "events": sum("event" in r for r in kept),
    }
    return kept


def _strip_leaves(records):
    del records[0]["leaves"]


def _forge_leaves(records):
    records[0]["leaves"][0]["seq"] += 1


def _claim_another_practice(records):
    records[0]["practice_id"] += 1


def _nothing_of_a_practice_without_a_chain(records):
    records[1:] = [{"end": {"chains": 0, "events": 0}}]
    records[0]["practice_id"] = 999_999


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (_strip_leaves, "does not list the chains the checkpoint signed"),
        (_forge_leaves, "not the ones the checkpoint signed"),
        (_claim_another_practice, "is missing"),  # that practice's chain
        (_nothing_of_a_practice_without_a_chain, "signed no chain of practice 999999"),
    ],
)
def test_an_evidence_file_with_its_list_of_chains_tampered_fails(
    client, written, officer, tamper, reason
):
    records = lines_of(download(client, officer))
    tamper(records)
    report = verified(joined(records))
    assert report.problem is not None and reason in report.problem, report.problem


def test_an_officers_file_without_its_practices_chain_fails(client, written, officer):
    records = lines_of(download(client, officer))
    (own,) = [r["chain"]["chain_id"] for r in records if "chain" in r]
    report = verified(joined(_without_chain(records, own)))
    assert f"chain {own} (practice {officer.practice_id}) is missing" in report.problem


def test_an_auditors_file_without_any_one_chain_fails(client, written, auditor):
    records = lines_of(download(client, auditor))
    report = verified(joined(records))
    assert report.problem is None, report.problem
    assert (
        report.chains[-1]
        == f"Every chain the checkpoint signed is here ({len(records[0]['leaves'])})."
    )
    chains = [r["chain"]["chain_id"] for r in records if "chain" in r]
    assert len(chains) == AuditChain.objects.count() >= 3
    for chain_id in chains:
        report = verified(joined(_without_chain(lines_of(joined(records)), chain_id)))
        assert report.problem and f"chain {chain_id} (" in report.problem, report.problem
        assert "is missing" in report.problem
    # Nor can the file pass for one practice's: it holds chains that are not that practice's.
    records[0]["practice_id"] = written[0].practice_id
    assert "is not one of practice" in verified(joined(records)).problem


def test_a_format_1_file_verifies_and_says_what_it_does_not_show(client, written, officer):
    records = lines_of(download(client, officer))
    assert records[0]["format"] == offline.FORMAT == "ehr-audit-evidence/2"
    # Format 1 gave each chain its Merkle path instead of the list of every head.
    tree = hashing.merkle_levels([hashing.leaf_bytes(leaf) for leaf in records[0].pop("leaves")])
    for record in records:
        if "chain" in record:
            record["path"] = hashing.merkle_path(tree, record["index"])
    assert "does not list the chains" in verified(joined(records)).problem
    records[0]["format"] = "ehr-audit-evidence/1"
    report = verified(joined(records))
    assert report.problem is None
    assert report.lines()[-1] == (
        "Not shown: that no chain was left out (a format-1 file does not list the chains "
        "the checkpoint signed)."
    )
    records[0]["format"] = "ehr-audit-evidence/3"
    assert "not an evidence file" in verified(joined(records)).problem


def test_the_verifier_refuses_a_file_of_another_kind_than_expected(
    client, written, officer, tmp_path
):
    data = download(client, officer)
    keys = offline.load_public_keys([public_key_arg()])
    lines = io.BytesIO(data).readlines()
    assert offline.verify_evidence(lines, keys, kind="evidence").problem is None
    problem = offline.verify_evidence(lines, keys, kind="archive").problem
    assert problem == "an evidence file, not the archive file you expected"
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(data)
    with pytest.raises(CommandError, match="not the archive file you expected"):
        call_command("audit_verify", file=str(path), public_key=[public_key_arg()], kind="archive")
    assert offline.main([str(path), "--public-key", public_key_arg(), "--kind", "archive"]) == 1


def test_records_only_an_archive_holds_are_refused_in_an_export(client, written, officer):
    records = lines_of(download(client, officer))
    at = _event_indexes(records)[-1]
    event = records[at]["event"]
    records[at] = {"next": event}
    records[-1]["end"]["events"] -= 1
    assert "only an archive shows the event after its month" in verified(joined(records)).problem


def test_an_evidence_file_checked_with_another_key_fails(client, written, officer):
    data = download(client, officer)
    stranger = Ed25519PrivateKey.generate().public_key()
    key_id = checkpoints.signing_key()[0]
    report = verified(data, key=f"{key_id}:{hashing.public_key_text(stranger)}")
    assert "signature is not valid" in report.problem


def test_a_checkpoint_re_signed_by_a_forger_fails(client, written, officer):
    records = lines_of(download(client, officer))
    forger = Ed25519PrivateKey.generate()
    records[0]["checkpoint"]["signature"] = hashing.b64(
        forger.sign(hashing.checkpoint_message(records[0]["checkpoint"]))
    )
    assert "signature is not valid" in verified(joined(records)).problem


# The migration from the single chain


@pytest.mark.django_db(transaction=True)
def test_the_single_chain_moves_into_the_legacy_chain_and_still_verifies(client):
    # The row alone: the service would record its creation in a chain of its own, which
    # the single chain's layout does not have.
    clinic = Practice.objects.create(name="Ludwig Family Medicine", group_id=199999)
    executor = MigrationExecutor(connection)
    # Every app's latest migration, not only audit's: going back to audit 0002 also
    # unapplies the migrations that depend on it (the outbox's), and later tests need them.
    leaf = executor.loader.graph.leaf_nodes()
    old = _migrate([("audit", "0002_append_only")])
    Head = old.get_model("audit", "AuditChainHead")
    Event = old.get_model("audit", "AuditEvent")
    key_id, key = chain.signing_key()
    prev = hashing.GENESIS_HASH
    for seq in range(1, 6):
        row = {
            "seq": seq,
            "occurred_at": f"2024-03-09T17:05:4{seq}.000000Z",
            "actor_ref": None,
            "actor_label": "",
            "account_ref": None,
            "account_label": "",
            "practice_id": clinic.pk if seq % 2 else None,
            "patient_id": "",
            "patient_name": "",
            "kind": kinds.SIGN_IN_FAILED.code,
            "type": "Security",
            "action": "Sign In",
            "details": f"Failed sign-in {seq}",
            "ip": "192.0.2.1",
            "user_agent": "",
            "request_id": "",
            "data": {"n": seq},
        }
        digest = chain.legacy_mac(row, prev_hash=prev, key=key)
        Event.objects.create(
            **{**row, "occurred_at": datetime(2024, 3, 9, 17, 5, 40 + seq, tzinfo=UTC)},
            key_id=key_id,
            prev_hash=prev,
            row_hash=digest,
        )
        prev = digest
    Head.objects.filter(pk=1).update(seq=5, row_hash=prev)
    old_head = prev

    _migrate(leaf)

    legacy = AuditChain.objects.get(kind=AuditChain.Kind.LEGACY)
    assert legacy.seq == 5
    moved = list(AuditEvent.objects.filter(chain=legacy).order_by("seq"))
    assert [e.seq for e in moved] == [1, 2, 3, 4, 5]
    # The hash an operator recorded before the move is still the last event's mac.
    assert moved[-1].mac == old_head
    assert audit_log_verify().problem is None
    # New events go into their own chains; the legacy chain takes none.
    provider = make_user(Role.PROVIDER, practice=clinic)
    new = audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
    assert new.chain_id != legacy.pk
    call_command("audit_checkpoint")
    assert audit_log_verify().problem is None
    # The practice's officer gets its legacy events, and the others' as hashes only.
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=clinic, username="officer")
    records = lines_of(download(client, officer))
    assert verified(joined(records)).problem is None
    legacy_lines = [
        r for r in records if "other" in r or r.get("event", {}).get("chain_id") == legacy.pk
    ]
    assert [("event" in r) for r in legacy_lines] == [True, False, True, False, True]
    # Hiding one of the practice's own events among the others is found.
    own = legacy_lines[0]["event"]
    legacy_lines[0].clear()
    legacy_lines[0]["other"] = _as_hash(own)
    records[-1]["end"]["events"] -= 1
    assert "an event of your own practice is hidden" in verified(joined(records)).problem
    # Its practice spelled as text hashes the same, and is refused as text.
    legacy_lines[0]["other"]["practice_id"] = str(own["practice_id"])
    assert "a practice must be a number or null" in verified(joined(records)).problem
    # A platform auditor's file shows every event whole: no event hides in it as a hash.
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    records = lines_of(download(client, auditor))
    assert verified(joined(records)).problem is None
    first = next(r for r in records if r.get("event", {}).get("chain_id") == legacy.pk)
    first["other"] = _as_hash(first.pop("event"))
    records[-1]["end"]["events"] -= 1
    assert "only a practice's file hides events" in verified(joined(records)).problem
    # An old event edited after the move still fails.
    audit_guards(install=False)
    sql("UPDATE audit_auditevent SET details = 'x' WHERE id = %s", [moved[2].pk])
    problem = audit_log_verify().problem
    audit_guards(install=True)
    assert problem.seq == 3 and problem.chain_id == legacy.pk


def _as_hash(event: dict) -> dict:
    """An event as a practice's file shows another practice's: its practice and hashes."""
    keep = ("seq", "practice_id", "prev_hash", "row_hash")
    return {**{name: event[name] for name in keep}, "content": hashing.event_content(event)}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_a_chain_start_moved_without_an_archive_is_found(unguarded, provider):
    """Only audit_archive moves a chain's start; moved by hand, the events before it hide.

    The start is moved to the first kept event and its hash, so the walk from it
    passes; the old events are even deleted. Verification asks which archive holds them.
    """
    own = AuditChain.objects.get(practice_id=provider.practice_id)
    second = AuditEvent.objects.get(chain=own, seq=2)
    sql(
        "UPDATE audit_auditchain SET start_seq = 2, start_hash = %s WHERE id = %s",
        [second.prev_hash, own.pk],
    )
    sql("DELETE FROM audit_auditevent WHERE chain_id = %s AND seq < 2", [own.pk])
    verify_fails(f"chain {own.pk} seq 2: the chain starts at seq 2, but no archive holds")
    # A start that does not lead to the first kept event is found by the walk first.
    sql("UPDATE audit_auditchain SET start_hash = %s WHERE id = %s", ["f" * 64, own.pk])
    verify_fails(f"chain {own.pk} seq 2 .*prev_hash does not match")


def _insert_made_up(records) -> int:
    """A made-up event, hashed as the app would, linked in after the second; its line."""
    at = _event_indexes(records)[1]
    made_up = json.loads(json.dumps(records[at]["event"]))
    made_up |= {"details": "Signed in, they say", "seq": made_up["seq"] + 1}
    made_up["prev_hash"] = records[at]["event"]["row_hash"]
    made_up["row_hash"] = hashing.row_hash(made_up, prev_hash=made_up["prev_hash"])
    records.insert(at + 1, {"event": made_up})
    records[-1]["end"]["events"] += 1
    return made_up["seq"]


def test_an_event_moved_between_chains_of_the_file_fails(client, written, auditor):
    """Taken from the end of one chain and put at the end of another, as its next event."""
    records = lines_of(download(client, auditor))
    starts = [i for i, r in enumerate(records) if "chain" in r] + [len(records) - 1]
    events = _event_indexes(records)
    n = next(
        n for n in range(len(starts) - 2) if any(starts[n] < i < starts[n + 1] for i in events)
    )
    first, second = records[starts[n]]["chain"], records[starts[n + 1]]["chain"]
    last = max(i for i in events if i < starts[n + 1])
    moved = {**records[last]["event"], "chain_id": second["chain_id"], "seq": second["seq"] + 1}
    records.insert(starts[n + 2], {"event": moved})
    del records[last]
    report = verified(joined(records))
    assert report.problem == (
        f"chain {first['chain_id']}: the events end at seq {first['seq'] - 1}, the signed head "
        f"is seq {first['seq']} (events dropped or head mismatch)"
    )


def test_a_made_up_event_linked_into_the_file_fails(client, written, officer):
    records = lines_of(download(client, officer))
    seq = _insert_made_up(records)
    report = verified(joined(records))
    # It follows its event and matches its own hash; the file's next event shows it.
    assert report.problem.endswith(f"expected seq {seq + 1}, found {seq} (out of order)")


# An outsider who kept an earlier evidence file holds the later one to it


def _evidence(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _since(later, earlier) -> offline.Report:
    keys = offline.load_public_keys([public_key_arg()])
    return offline.verify_file(later, keys, since=earlier)


def test_a_later_evidence_file_goes_on_from_an_earlier_one(
    client, written, auditor, provider, tmp_path, capsys
):
    earlier = _evidence(tmp_path, "earlier.jsonl", download(client, auditor))
    for _ in range(3):
        audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
    later = _evidence(tmp_path, "later.jsonl", download(client, auditor))
    chains = len(lines_of(earlier.read_bytes())[0]["leaves"])
    report = _since(later, earlier)
    assert report.problem is None, report.problem
    assert report.extends == [
        f"Goes on from checkpoint 1 of the earlier file: {chains} of its {chains} chains shown "
        "unchanged up to the heads it signed."
    ]
    call_command("audit_verify", file=str(later), public_key=[public_key_arg()], since=str(earlier))
    assert report.extends[0] in capsys.readouterr().out
    # The other way round, the older file does not go on from the newer one.
    assert "does not come after checkpoint" in _since(earlier, later).problem
    args = [str(later), "--public-key", public_key_arg(), "--since", str(earlier)]
    assert offline.main(args) == 0
    assert offline.main([*args, "--previous", str(earlier)]) == 2
    with pytest.raises(CommandError, match="--since compares evidence files"):
        call_command(
            "audit_verify",
            file=str(later),
            public_key=[public_key_arg()],
            since=str(earlier),
            previous=str(earlier),
        )
    with pytest.raises(CommandError, match="--previous and --since go with --file"):
        call_command("audit_verify", since=str(earlier))


def _cut_last(chain_id: int) -> None:
    last = AuditEvent.objects.filter(chain_id=chain_id).order_by("-seq").first()
    sql("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    sql(
        "UPDATE audit_auditchain SET seq = seq - 1, row_hash = %s WHERE id = %s",
        [last.prev_hash, chain_id],
    )


@pytest.mark.parametrize("rewritten", [True, False])
def test_a_history_signed_again_with_the_stolen_key_fails_against_an_earlier_file(
    client, written, auditor, tmp_path, monkeypatch, rewritten
):
    """The signer refuses a rewritten or shortened chain; someone holding the signing key
    need not ask it. The new file verifies on its own, not against the one kept."""
    earlier = _evidence(tmp_path, "earlier.jsonl", download(client, auditor))
    target = written[0]
    length = AuditEvent.objects.filter(chain_id=target.chain_id).count()
    audit_guards(install=False)
    try:
        rewrite_chain(target.chain_id) if rewritten else _cut_last(target.chain_id)
    finally:
        audit_guards(install=True)
    # A signer that checks nothing: the thief's own.
    monkeypatch.setattr(checkpoints, "extension_problem", lambda *signed_so_far: None)
    later = _evidence(tmp_path, "later.jsonl", download(client, auditor))
    keys = offline.load_public_keys([public_key_arg()])
    assert offline.verify_file(later, keys).problem is None
    assert _since(later, earlier).problem == (
        f"chain {target.chain_id}, seq {length}: not the event the earlier checkpoint signed "
        "there (the chain was rewritten)"
        if rewritten
        else f"chain {target.chain_id} ends at seq {length - 1}; the earlier checkpoint signed "
        f"it to seq {length} (events removed)"
    )


def test_a_practice_file_goes_on_from_an_earlier_one_and_says_what_it_cannot_show(
    client, written, officer, other_provider, provider, tmp_path
):
    earlier = _evidence(tmp_path, "earlier.jsonl", download(client, officer))
    audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
    audit_event_record(
        kind=kinds.SIGNED_OUT, acting_user=other_provider, account=other_provider, ip=None
    )
    later = _evidence(tmp_path, "later.jsonl", download(client, officer))
    report = _since(later, earlier)
    assert report.problem is None, report.problem
    leaves = lines_of(earlier.read_bytes())[0]["leaves"]
    other = sorted(
        str(leaf["chain_id"])
        for leaf in leaves
        if leaf["kind"] == "practice" and leaf["practice_id"] != officer.practice_id
    )
    assert other
    assert report.extends[-1] == (
        f"Not shown: chain {', '.join(other)} up to the earlier heads (not held by this file; "
        "those heads are longer or equal here)."
    )


def test_two_checkpoints_of_one_number_do_not_go_on_from_each_other():
    """A history signed again from an earlier number: two different checkpoints 7."""
    leaf = {"chain_id": 1, "seq": 3, "row_hash": "a" * 64}

    def report(checkpoint_hash: str) -> offline.Report:
        checkpoint = {"number": 7, "checkpoint_hash": checkpoint_hash}
        return offline.Report(checkpoint=checkpoint, leaves=[leaf])

    assert offline.extends(report("b" * 64), report("b" * 64))[0].startswith("Goes on from")
    with pytest.raises(offline.EvidenceError, match="checkpoint 7 does not come after"):
        offline.extends(report("b" * 64), report("c" * 64))


def test_a_chain_started_after_the_earlier_head_cannot_go_on_from_it():
    """The later file holds the chain from seq 9; the earlier head was seq 3."""
    old = {"chain_id": 1, "seq": 3, "row_hash": "a" * 64, "start_seq": 1}
    new = {"chain_id": 1, "seq": 12, "row_hash": "d" * 64, "start_seq": 9}
    earlier = offline.Report(checkpoint={"number": 7, "checkpoint_hash": "b"}, leaves=[old])
    later = offline.Report(
        checkpoint={"number": 8, "checkpoint_hash": "c"}, leaves=[new], hashes={1: {}}
    )
    with pytest.raises(offline.EvidenceError, match="chain 1 starts at seq 9 in this file"):
        offline.extends(earlier, later)
    # Not held by the file at all (another practice's): said, not failed.
    later.hashes = {}
    assert offline.extends(earlier, later)[-1].startswith("Not shown: chain 1 up to")
