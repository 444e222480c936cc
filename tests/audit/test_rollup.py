"""The dashboard's counters of a span: removed, and counted afresh (`audit.rollup`)."""

from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.roles import Role
from audit import kinds, partitions, rollup
from audit.models import AuditEvent
from audit.services import audit_event_record
from tests.audit.helpers import record_at, sql
from tests.concurrency import run_together
from tests.factories import make_user

MARCH = partitions.bounds(datetime(2024, 3, 1).date())
APRIL = partitions.bounds(datetime(2024, 4, 1).date())


def counters(start: datetime, end: datetime) -> tuple[list[tuple], list[tuple]]:
    """Every counter of [start, end): (quarter hours, days), as rows in a fixed order."""
    first, past = rollup.bucket_of(start), rollup.bucket_of(end)
    day = rollup.BUCKETS_PER_DAY
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT practice_ref, bucket, kind, actor_ref, count FROM {rollup.TABLE} "  # noqa: S608
            "WHERE bucket >= %s AND bucket < %s ORDER BY 1, 2, 3, 4",
            [first, past],
        )
        quarter_hours = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT practice_ref, day, kind, actor_ref, count FROM {rollup.DAY_TABLE} "  # noqa: S608
            "WHERE day >= %s AND day < %s ORDER BY 1, 2, 3, 4",
            [first // day, past // day],
        )
        return quarter_hours, [tuple(row) for row in cursor.fetchall()]


@pytest.fixture
def two_months(provider, agent):
    """Events of March 2024, on its first and last instants among them, and of April.

    The last, a microsecond before April, is in March's last quarter hour, which
    SQLite's own reading of the time (to the millisecond, rounded) would miss.
    """
    start, end = MARCH
    for when in (start, start + timedelta(days=9, hours=13), end - timedelta(microseconds=1)):
        record_at(when, acting_user=provider, account=provider)
        record_at(
            when, kind=kinds.SUPPORT_PIN_VALIDATION_FAILED, acting_user=agent, account=provider
        )
    record_at(APRIL[0], acting_user=provider, account=provider)
    record_at(APRIL[0] + timedelta(days=3), acting_user=agent, account=agent)


def test_a_months_counters_are_counted_again_from_its_events_and_no_others(two_months, capsys):
    march, april = counters(*MARCH), counters(*APRIL)
    assert len(march[0]) == 6 and len(march[1]) == 6  # per actor for the failed validations
    assert sum(row[-1] for row in march[0]) == sum(row[-1] for row in march[1]) == 6
    # Counters wrong in both months, one missing in March.
    sql(f"UPDATE {rollup.TABLE} SET count = count + 40")  # noqa: S608
    sql(f"UPDATE {rollup.DAY_TABLE} SET count = count + 40")  # noqa: S608
    sql(f"DELETE FROM {rollup.TABLE} WHERE bucket = %s", [rollup.bucket_of(MARCH[0])])  # noqa: S608
    call_command("audit_recount", "--month", "2024-03")
    assert "Recounted 2024-03: 6 quarter-hour and 6 day counters written" in capsys.readouterr().out
    assert counters(*MARCH) == march
    # April was not touched: still wrong by 40.
    after = counters(*APRIL)
    assert [row[-1] - 40 for row in after[0]] == [row[-1] for row in april[0]]
    assert [row[-1] - 40 for row in after[1]] == [row[-1] for row in april[1]]


def test_a_months_counters_are_removed_and_no_others(two_months):
    removed = rollup.counters_remove(start=MARCH[0], end=MARCH[1])
    assert removed == rollup.Counters(6, 6)
    assert counters(*MARCH) == ([], [])
    assert counters(*APRIL) != ([], [])


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (MARCH[0] + timedelta(minutes=15), MARCH[1]),  # a quarter hour, not a midnight
        (MARCH[0], MARCH[1] - timedelta(seconds=1)),
        (MARCH[0] + timedelta(hours=5), MARCH[1] + timedelta(hours=5)),  # New York's midnights
    ],
)
def test_only_whole_utc_days_are_removed_or_recounted(db, start, end):
    with pytest.raises(ValueError, match="whole UTC days"):
        rollup.counters_remove(start=start, end=end)
    with pytest.raises(ValueError, match="whole UTC days"):
        rollup.counters_recount(start=start, end=end)


def test_the_recount_command_refuses_a_month_it_cannot_read(db):
    with pytest.raises(CommandError, match="must be a month as YYYY-MM"):
        call_command("audit_recount", "--month", "March")


@pytest.mark.postgres_only  # SQLite's test database is shared in memory: one writer at a time
@pytest.mark.django_db(transaction=True)
def test_events_written_during_a_recount_are_counted_once(practice):
    users = [make_user(Role.NURSE, practice=practice) for _ in range(3)]
    midnight = rollup.bucket_start(rollup.bucket_of(timezone.now()) // 96 * 96)
    start, end = midnight - timedelta(days=1), midnight + timedelta(days=2)

    def work(user):
        if user is None:
            for _ in range(15):
                rollup.counters_recount(start=start, end=end)
            return
        for _ in range(30):
            audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=None)

    _, errors = run_together(work, [*users, None])
    assert errors == []
    events = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    raw = Counter(events.values_list("practice_id", "kind"))
    quarter_hours, days = counters(start, end)
    for rows in (quarter_hours, days):
        counted = Counter()
        for practice_ref, _when, kind, _actor, count in rows:
            counted[(practice_ref or None, kind)] += count
        assert counted == raw
    assert raw[(practice.pk, kinds.SIGNED_IN.code)] == 3 * 30
