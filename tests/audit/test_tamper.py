"""The log as an attacker with database access would try to change it."""

import contextlib
import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from accounts.models import User
from accounts.roles import Role
from audit import chain, kinds
from audit.models import AuditChainAnchor, AuditChainHead, AuditEvent
from audit.selectors import VERIFY_COLUMNS, audit_chain_verify
from audit.services import EVENT_COLUMNS, audit_event_record
from tests.concurrency import run_together
from tests.conftest import audit_guards
from tests.factories import confirm_identity, make_user


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


class _Abandon(Exception):
    """Roll a history back on purpose."""


def own_mac_is_valid(row: dict) -> bool:
    key = chain.verification_key(row["key_id"])
    return row["row_hash"] == chain.row_hash(row, prev_hash=row["prev_hash"], key=key)


def test_a_row_spliced_in_from_another_history_breaks_the_link_after_it(unguarded, nurse):
    """A valid MAC per row is not enough: each row must point at the row before it.

    The spliced row is one the app really signed for that position, in a history
    that was then abandoned (a restored backup, a copy signed with the same key).
    Its MAC over its own fields and its own prev_hash is valid; per-row MACs would
    pass it. Only the next row's link to it gives it away.
    """
    with contextlib.suppress(_Abandon), transaction.atomic():
        other = audit_event_record(kind=kinds.SIGNED_OUT, acting_user=nurse, account=nurse, ip=None)
        spliced = AuditEvent.objects.filter(pk=other.pk).values(*EVENT_COLUMNS).get()
        raise _Abandon
    real = audit_event_record(kind=kinds.SIGNED_IN, acting_user=nurse, account=nurse, ip=None)
    after = audit_event_record(kind=kinds.SIGNED_OUT, acting_user=nurse, account=nurse, ip=None)
    assert real.seq == spliced["seq"] and real.prev_hash == spliced["prev_hash"]
    assert real.row_hash != spliced["row_hash"]
    call_command("audit_verify")

    AuditEvent.objects.filter(pk=real.pk).update(**spliced)

    rows = AuditEvent.objects.order_by("seq").values(*VERIFY_COLUMNS)
    assert all(own_mac_is_valid(row) for row in rows)
    message = verify_fails("prev_hash does not match the previous event")
    assert f"seq {after.seq} (row id {after.pk})" in message
    assert audit_chain_verify().problem.seq == after.seq


# Who an event is about is hashed as actor_ref/account_ref. The foreign keys
# beside them are not (deleting a user sets them to NULL), yet they decide who
# reads a row: a provider's own log is the events whose `account_id` is theirs,
# and the username filter matches `actor_id`/`account_id`. The page and the
# export print the hashed labels, so a re-pointed key would put a row in the
# wrong reader's log under the right name.


def repoint(event: AuditEvent, **columns) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(**columns)


@pytest.mark.parametrize("column", ["actor_ref", "account_ref"])
def test_a_repointed_hashed_reference_is_named(unguarded, nurse, column):
    target = unguarded[3]
    repoint(target, **{column: nurse.pk})
    message = verify_fails("content does not match its hash")
    assert f"seq {target.seq} (row id {target.pk})" in message


@pytest.mark.parametrize("column", ["actor_id", "account_id"])
def test_a_repointed_foreign_key_is_named(unguarded, nurse, column):
    target = unguarded[3]
    repoint(target, **{column: nurse.pk})
    message = verify_fails(f"{column} was changed")
    assert f"seq {target.seq} (row id {target.pk})" in message


def test_a_repointed_account_puts_the_row_in_someone_elses_log(unguarded, client, nurse):
    """Show what the check on the keys guards: a row in the wrong reader's log.

    The nurse reads the provider's event, under the provider's name, on the page
    and in the export.
    """
    target = unguarded[3]
    client.force_login(nurse)
    assert target.details not in [row["details"] for row in client.get("/audit/").context["rows"]]

    repoint(target, account_id=nurse.pk)

    page = client.get("/audit/").context["rows"]
    assert [row["user"] for row in page if row["details"] == target.details] == [target.actor_label]
    confirm_identity(client)
    response = client.get("/audit/export.csv")
    assert response.status_code == 200
    export = csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert [row[3] for row in export if row[6] == target.details] == [target.actor_label]


@pytest.mark.parametrize("column", ["actor_id", "account_id"])
def test_a_foreign_key_cleared_while_the_user_exists_is_named(events, column):
    """The guards let anyone clear the keys, as a deletion does; verification tells them apart.

    (Deleting the user is not reported: test_deleting_a_user_keeps_the_events_and_the_chain.)
    """
    target = events[3]
    repoint(target, **{column: None})
    message = verify_fails(f"{column} was cleared while user {target.actor_ref} still exists")
    assert f"seq {target.seq} (row id {target.pk})" in message


def test_a_cleared_account_takes_the_row_out_of_its_own_log(events, client, provider):
    target = events[3]
    client.force_login(provider)
    before = client.get("/audit/").context["rows"]

    repoint(target, account_id=None)

    assert len(client.get("/audit/").context["rows"]) == len(before) - 1
