"""The log as an attacker with database access would try to change it."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from accounts.models import User
from accounts.roles import Role
from audit import chain, kinds
from audit.models import AuditChainAnchor, AuditChainHead, AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_event_record
from tests.concurrency import run_together
from tests.conftest import audit_guards
from tests.factories import make_user


@pytest.fixture
def events(provider):
    for _ in range(6):
        audit_event_record(
            kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip="192.0.2.1"
        )
    return list(AuditEvent.objects.order_by("seq"))


def sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def verify_fails(match: str) -> str:
    with pytest.raises(CommandError, match=match) as failure:
        call_command("audit_verify")
    return str(failure.value)


def test_verify_passes_on_an_untouched_log(events, capsys):
    call_command("audit_verify")
    assert "Audit chain intact" in capsys.readouterr().out


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET details = 'nothing happened' WHERE seq = %s",
        "UPDATE audit_auditevent SET ip = NULL WHERE seq = %s",
        "UPDATE audit_auditevent SET row_hash = 'x' WHERE seq = %s",
        "DELETE FROM audit_auditevent WHERE seq = %s",
    ],
)
def test_the_database_refuses_updates_and_deletes(events, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement, [events[2].seq])


def test_the_database_refuses_repointing_the_actor(events, nurse):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql("UPDATE audit_auditevent SET actor_id = %s WHERE seq = %s", [nurse.pk, events[1].seq])


def test_the_chain_head_only_moves_forward(events):
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        sql("UPDATE audit_auditchainhead SET seq = 1")
    with pytest.raises(DatabaseError), transaction.atomic():
        sql("DELETE FROM audit_auditchainhead")


def test_columns_list_of_the_sqlite_guard_is_complete():
    from importlib import import_module

    guard = import_module("audit.migrations.0002_append_only")
    columns = {field.column for field in AuditEvent._meta.concrete_fields}
    assert columns - {"actor_id", "account_id"} == set(guard.EVENT_COLUMNS)


def test_deleting_a_user_keeps_the_events_and_the_chain(practice):
    temp = make_user(Role.NURSE, practice=practice, username="temp")
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=temp, account=temp, ip=None)
    temp_pk = temp.pk
    temp.delete()
    event = AuditEvent.objects.get(kind=kinds.SIGNED_IN.code, actor_ref=temp_pk)
    assert event.actor_id is None and event.actor_label.startswith("temp (")
    assert audit_chain_verify().problem is None


# With the guards dropped (a DBA, or an attacker who has the database), every
# change is still found by audit_verify.


@pytest.fixture
def unguarded(events):
    audit_guards(install=False)
    yield events
    audit_guards(install=True)


def test_edited_row_is_named(unguarded):
    target = unguarded[3]
    sql("UPDATE audit_auditevent SET details = 'Nothing to see' WHERE id = %s", [target.pk])
    message = verify_fails("content does not match")
    assert f"seq {target.seq} (row id {target.pk})" in message


def test_edited_time_is_found(unguarded):
    sql(
        "UPDATE audit_auditevent SET occurred_at = %s WHERE id = %s",
        ["2001-01-01 00:00:00", unguarded[1].pk],
    )
    verify_fails(f"seq {unguarded[1].seq}")


def test_deleted_row_is_found(unguarded):
    sql("DELETE FROM audit_auditevent WHERE id = %s", [unguarded[2].pk])
    verify_fails(f"expected seq {unguarded[2].seq}, found {unguarded[3].seq}: events are missing")


def test_deleted_last_rows_are_found_even_with_the_head_rewound(unguarded):
    last = unguarded[-1]
    sql("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    verify_fails("events at the end were deleted")
    sql("UPDATE audit_auditchainhead SET seq = %s, row_hash = %s", [last.seq - 1, "0" * 64])
    verify_fails("head's hash does not match")


def test_inserted_row_is_found(unguarded, provider):
    template = unguarded[-1]
    sql(
        "INSERT INTO audit_auditevent (seq, occurred_at, actor_id, actor_ref, actor_label,"
        " account_id, account_ref, account_label, practice_id, patient_id, patient_name, kind,"
        " type, action, details, ip, user_agent, request_id, data, key_id, prev_hash, row_hash)"
        " VALUES (%s, %s, NULL, NULL, '', NULL, NULL, '', NULL, '', '', 'x', 'Account',"
        " 'Update', 'forged', NULL, '', '', '{}', %s, %s, %s)",
        [template.seq + 1, template.occurred_at, template.key_id, template.row_hash, "f" * 64],
    )
    verify_fails(f"seq {template.seq + 1}")


def test_reordered_rows_are_found(unguarded):
    a, b = unguarded[1], unguarded[2]
    sql("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [10_000_000, a.pk])
    sql("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [a.seq, b.pk])
    sql("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b.seq, a.pk])
    verify_fails(f"seq {a.seq}")


def test_rehashing_without_the_key_is_found(unguarded, settings):
    """An attacker who recomputes the chain with any other key still fails."""
    from audit.chain import FIELDS, row_hash

    target = unguarded[2]
    row = AuditEvent.objects.filter(pk=target.pk).values("id", *FIELDS).get()
    row["details"] = "Nothing to see"
    forged = row_hash(row, prev_hash=target.prev_hash, key=b"attacker-guess" * 3)
    sql(
        "UPDATE audit_auditevent SET details = %s, row_hash = %s WHERE id = %s",
        ["Nothing to see", forged, target.pk],
    )
    verify_fails(f"seq {target.seq}")


def test_archived_rows_verify_from_a_signed_anchor(unguarded):
    first_kept = unguarded[3]
    sql("DELETE FROM audit_auditevent WHERE seq < %s", [first_kept.seq])
    verify_fails("events are missing|expected seq")
    key_id, key = chain.signing_key()
    anchor = AuditChainAnchor.objects.create(
        seq=first_kept.seq,
        prev_hash=first_kept.prev_hash,
        archived_through=first_kept.occurred_at,
        key_id=key_id,
        signature=chain.anchor_signature(
            seq=first_kept.seq, prev_hash=first_kept.prev_hash, key=key
        ),
    )
    call_command("audit_verify")
    AuditChainAnchor.objects.filter(pk=anchor.pk).update(signature="0" * 64)
    verify_fails("anchor's signature is not valid")


def test_verify_checks_more_than_one_batch(events):
    from audit.selectors import audit_chain_verify as walk

    result = walk(batch=2)
    assert result.problem is None
    assert result.checked == AuditChainHead.objects.get().seq


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain(practice):
    users = [make_user(Role.NURSE, practice=practice) for _ in range(8)]
    start = AuditChainHead.objects.get().seq

    def writer(user: User) -> None:
        for _ in range(25):
            audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=None)

    _, errors = run_together(writer, users)
    assert errors == []
    head = AuditChainHead.objects.get()
    assert head.seq == start + 8 * 25
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, head.seq + 1))
    assert audit_chain_verify().problem is None
