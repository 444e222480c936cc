"""The log as an attacker with database access would try to change it."""

import contextlib

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import DatabaseError, transaction

from accounts.models import User
from accounts.roles import Role
from audit import chain, kinds
from audit.chain import VERIFY_COLUMNS
from audit.models import AuditChain, AuditEvent, AuditVerification
from audit.services import EVENT_COLUMNS, audit_event_record
from audit.verification import audit_log_verify
from tests.audit.helpers import sql, verify_fails
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


def test_verify_passes_on_an_untouched_log(events, capsys):
    call_command("audit_verify")
    assert "Audit log intact" in capsys.readouterr().out


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


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditchain SET seq = 1 WHERE id = %s",
        "UPDATE audit_auditchain SET row_hash = 'x' WHERE id = %s",
        "UPDATE audit_auditchain SET practice_id = NULL, kind = 'platform' WHERE id = %s",
        "UPDATE audit_auditchain SET start_seq = 0 WHERE id = %s",
        "DELETE FROM audit_auditchain WHERE id = %s",
    ],
)
def test_a_chain_head_only_moves_forward(events, statement):
    with pytest.raises(DatabaseError, match="audit chain"), transaction.atomic():
        sql(statement, [events[0].chain_id])


def test_a_chain_cannot_be_planted_with_a_head(events, other_practice):
    with pytest.raises(DatabaseError, match="starts empty"), transaction.atomic():
        sql(
            "INSERT INTO audit_auditchain (kind, practice_id, seq, row_hash, start_seq,"
            " start_hash, start_mac) VALUES ('practice', %s, 5, %s, 1, %s, %s)",
            [other_practice.pk, "f" * 64, "0" * 64, "0" * 64],
        )


def test_columns_list_of_the_sqlite_guard_is_complete():
    from importlib import import_module

    guard = import_module("audit.migrations.0003_chains_per_practice")
    columns = {field.column for field in AuditEvent._meta.concrete_fields}
    assert columns - {"actor_id", "account_id"} == set(guard.EVENT_COLUMNS)


def test_deleting_a_user_keeps_the_events_and_the_chain(practice):
    temp = make_user(Role.NURSE, practice=practice, username="temp")
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=temp, account=temp, ip=None)
    temp_pk = temp.pk
    temp.delete()
    event = AuditEvent.objects.get(kind=kinds.SIGNED_IN.code, actor_ref=temp_pk)
    assert event.actor_id is None and event.actor_label.startswith("temp (")
    assert audit_log_verify().problem is None


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
    sql(
        "UPDATE audit_auditchain SET seq = %s, row_hash = %s WHERE id = %s",
        [last.seq - 1, "0" * 64, last.chain_id],
    )
    verify_fails("head's hash does not match")


def insert_forged(template: AuditEvent, **changes) -> None:
    row = {**AuditEvent.objects.filter(pk=template.pk).values(*EVENT_COLUMNS).get(), **changes}
    row["data"] = "{}"
    columns = ", ".join(row)
    sql(
        f"INSERT INTO audit_auditevent ({columns}) VALUES ({', '.join(['%s'] * len(row))})",  # noqa: S608  (column names from the model)
        list(row.values()),
    )


def test_inserted_row_is_found(unguarded, provider):
    template = unguarded[-1]
    insert_forged(template, seq=template.seq + 1, details="forged", prev_hash=template.row_hash)
    verify_fails(f"seq {template.seq + 1}")


def test_reordered_rows_are_found(unguarded):
    a, b = unguarded[1], unguarded[2]
    sql("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [10_000_000, a.pk])
    sql("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [a.seq, b.pk])
    sql("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b.seq, a.pk])
    verify_fails(f"seq {a.seq}")


def test_rehashing_without_the_key_is_found(unguarded):
    """An attacker who recomputes the public links after an edit still fails the keyed hash."""
    from audit import hashing

    target = unguarded[2]
    rows = list(
        AuditEvent.objects.filter(chain_id=target.chain_id, seq__gte=target.seq)
        .order_by("seq")
        .values("id", *hashing.EVENT_FIELDS)
    )
    prev = target.prev_hash
    for row in rows:
        if row["id"] == target.pk:
            row["details"] = "Nothing to see"
        digest = hashing.row_hash(row, prev_hash=prev)
        sql(
            "UPDATE audit_auditevent SET details = %s, prev_hash = %s, row_hash = %s WHERE id = %s",
            [row["details"], prev, digest, row["id"]],
        )
        prev = digest
    sql("UPDATE audit_auditchain SET row_hash = %s WHERE id = %s", [prev, target.chain_id])
    message = verify_fails("keyed hash does not match")
    assert f"seq {target.seq} (row id {target.pk})" in message


def test_verify_checks_more_than_one_batch(events):
    result = audit_log_verify(batch=2)
    assert result.problem is None
    assert result.events == AuditEvent.objects.count() >= 6


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain(practice):
    users = [make_user(Role.NURSE, practice=practice) for _ in range(8)]

    def writer(user: User) -> None:
        for _ in range(25):
            audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=None)

    _, errors = run_together(writer, users)
    assert errors == []
    head = AuditChain.objects.get(practice=practice)
    events = AuditEvent.objects.filter(chain=head).order_by("seq")
    assert head.seq == events.count() >= 8 * 25
    assert list(events.values_list("seq", flat=True)) == list(range(1, head.seq + 1))
    times = list(events.values_list("occurred_at", flat=True))
    assert times == sorted(times)
    assert audit_log_verify().problem is None


class _Abandon(Exception):
    """Roll a history back on purpose."""


def own_hashes_are_valid(row: dict) -> bool:
    from audit import hashing

    key = chain.verification_key(row["key_id"])
    return row["row_hash"] == hashing.row_hash(row, prev_hash=row["prev_hash"]) and row[
        "mac"
    ] == chain.event_mac(row["row_hash"], key=key)


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
    assert all(own_hashes_are_valid(row) for row in rows)
    message = verify_fails("prev_hash does not match the previous event")
    assert f"seq {after.seq} (row id {after.pk})" in message
    assert audit_log_verify().problem.seq == after.seq


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

    The nurse reads the provider's event, under the provider's name, on the page.
    The export, which must be signed first, finds it and sends nothing.
    """
    target = unguarded[3]
    client.force_login(nurse)
    assert target.details not in [row["details"] for row in client.get("/audit/").context["rows"]]

    repoint(target, account_id=nurse.pk)

    page = client.get("/audit/").context["rows"]
    assert [row["user"] for row in page if row["details"] == target.details] == [target.actor_label]
    confirm_identity(client)
    response = client.get("/audit/export.csv", {"last": "week"})
    assert response.status_code == 302
    assert response["Location"] == "/audit/?last=week"
    assert "Nothing was exported" in str(next(iter(get_messages(response.wsgi_request))))
    finding = AuditVerification.objects.get()
    assert finding.intact is False
    assert finding.problem.startswith(
        f"chain {target.chain_id} seq {target.seq} (row id {target.pk})"
    )
    assert "account_id was changed (found signing a checkpoint: none signed" in finding.problem
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED.code).exists()


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
