"""Monthly partitions of the event table, and months archived to signed files (PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from accounts.roles import Role
from audit import kinds, partitions
from audit.archive import audit_partitions_create
from audit.models import AuditEvent
from audit.services import audit_event_record
from audit.verification import audit_log_verify
from tests.audit.helpers import record_at, sql
from tests.concurrency import run_together
from tests.factories import make_user

pytestmark = pytest.mark.postgres_only


def partition_holding(event) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM audit_auditevent WHERE id = %s", [event.pk]
        )
        return cursor.fetchone()[0]


def partition_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'audit_auditevent'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


def test_an_event_lands_in_its_months_partition_and_never_fails_for_want_of_one(provider):
    now = audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    assert partition_holding(now) == partitions.partition_name(now.occurred_at.date())
    far = record_at(datetime(2091, 5, 1, tzinfo=UTC), acting_user=provider, account=provider)
    old = record_at(datetime(1999, 5, 1, tzinfo=UTC), acting_user=provider, account=provider)
    assert partition_holding(far) == partition_holding(old) == partitions.DEFAULT


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET details = 'nothing happened'",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_a_partition_refuses_changes_directly_too(provider, statement):
    event = audit_event_record(
        kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None
    )
    record_at(datetime(2091, 5, 1, tzinfo=UTC), acting_user=provider, account=provider)
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # PostgreSQL truncates nothing with checks pending
    for table in (partition_holding(event), partitions.DEFAULT):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            sql(statement.format(table=table))


def test_creating_a_month_moves_its_events_out_of_the_default_partition(provider, capsys):
    later = datetime.now(UTC) + timedelta(days=250)
    early = record_at(later, acting_user=provider, account=provider)
    assert partition_holding(early) == partitions.DEFAULT
    month = partitions.first_of(later)
    with time_machine.travel(later - timedelta(days=31), tick=False):
        call_command("audit_partitions")
    out = capsys.readouterr().out
    assert f"Created {partitions.partition_name(month)} for {month:%Y-%m} (1 events moved" in out
    assert partition_holding(early) == partitions.partition_name(month)
    moved = AuditEvent.objects.get(pk=early.pk)
    assert (moved.seq, moved.row_hash) == (early.seq, early.row_hash)
    created = AuditEvent.objects.filter(kind=kinds.AUDIT_PARTITION_CREATED.code)
    assert f"Audit log partition for {month:%Y-%m} created (1 events moved into it)" in set(
        created.values_list("details", flat=True)
    )
    months = [partitions.add_months(partitions.first_of(later), n) for n in range(-1, 3)]
    assert {partitions.partition_name(m) for m in months} <= partition_names()
    with time_machine.travel(later - timedelta(days=31), tick=False):
        assert audit_partitions_create() == []
    assert audit_log_verify().problem is None


@pytest.mark.django_db(transaction=True)
def test_writers_never_fail_while_a_partition_is_created(practice):
    users = [make_user(Role.NURSE, practice=practice) for _ in range(4)]
    far = datetime.now(UTC) + timedelta(days=400)
    record_at(far, acting_user=users[0], account=users[0])  # waits in the default partition

    def work(user):
        if user is None:
            return partitions.partition_create(partitions.first_of(far))
        for _ in range(15):
            audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=None)

    _, errors = run_together(work, [*users, None])
    assert errors == []
    assert AuditEvent.objects.filter(kind=kinds.SIGNED_IN.code).count() == 1 + 4 * 15
    assert audit_log_verify().problem is None
