"""The dashboard's rollup and its reads: exact against the raw events, scoped as the report."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roles import Role
from audit import dashboard, kinds, rollup
from audit.models import AuditEventCount, AuditEventDayCount
from audit.selectors import audit_event_scope
from tests.audit.helpers import record_at, sql
from tests.factories import make_user

# Midnight in the zones whose days do not start on a UTC hour, and a daylight-saving change.
KOLKATA_MIDNIGHT = datetime(2024, 3, 18, 18, 30, tzinfo=UTC)  # 03/19 00:00 IST (+5:30)
KATHMANDU_MIDNIGHT = datetime(2024, 3, 18, 18, 15, tzinfo=UTC)  # 03/19 00:00 NPT (+5:45)
NEW_YORK_SPRING = datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # clocks went from 2:00 to 3:00 EDT
NEW_YORK_FALL = datetime(2024, 11, 3, 6, 0, tzinfo=UTC)  # 2:00 EDT became 1:00 EST: 25 hours
LORD_HOWE_FALL = datetime(2024, 4, 6, 15, 0, tzinfo=UTC)  # +11:00 to +10:30, half an hour back
ANCHORS = [KOLKATA_MIDNIGHT, KATHMANDU_MIDNIGHT, NEW_YORK_SPRING, NEW_YORK_FALL, LORD_HOWE_FALL]
ZONES = ["Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe", "UTC"]
WRITTEN = [
    kinds.SIGNED_IN,
    kinds.SIGN_IN_FAILED,
    kinds.SUPPORT_PIN_VIEWED,
    kinds.SUPPORT_PIN_VALIDATION_FAILED,
    kinds.SIGN_IN_LOCKED_UNKNOWN,
]


def raw_counts(viewer, practice_id, period) -> dict:
    """Count the raw events as the report scopes them, by day in the period's zone and kind."""
    events = audit_event_scope(viewer=viewer).filter(
        occurred_at__gte=period.start, occurred_at__lt=period.end
    )
    if practice_id is not None:
        events = events.filter(practice_id=practice_id)
    return dict(
        Counter(
            (moment.astimezone(period.time_zone).date(), kind)
            for moment, kind in events.values_list("occurred_at", "kind")
        )
    )


def raw_agents(viewer, practice_id, period) -> dict:
    events = audit_event_scope(viewer=viewer).filter(
        kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
    )
    if practice_id is not None:
        events = events.filter(practice_id=practice_id)
    return dict(Counter(events.exclude(actor_ref=None).values_list("actor_ref", flat=True)))


@pytest.fixture
def cast(practice, other_practice, provider, other_provider, agent, compliance, auditor):
    other_agent = make_user(Role.SUPPORT_AGENT, username="agent2")
    return {
        "accounts": [provider, other_provider, None],
        "actors": [provider, agent, other_agent, None],
        "viewers": [(compliance, None), (auditor, None), (auditor, other_practice.pk)],
    }


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    anchor=st.sampled_from(ANCHORS),
    writes=st.lists(
        st.tuples(
            # Around the anchor, often within a microsecond of a quarter hour.
            st.one_of(
                st.integers(-3 * 86400 * 10**6, 3 * 86400 * 10**6),
                st.integers(-12, 12).map(lambda q: q * 900 * 10**6 + 0),
                st.integers(-12, 12).map(lambda q: q * 900 * 10**6 - 1),
            ),
            st.sampled_from(WRITTEN),
            st.integers(0, 2),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=6,
    ),
    zone=st.sampled_from(ZONES),
)
def test_the_rollup_equals_a_count_of_the_raw_events(cast, anchor, writes, zone):
    """After random writes around midnight in zones offset by half and quarter hours, and
    across daylight-saving changes (of an hour both ways, and Lord Howe's half hour), every
    viewer's counts per day are the raw events', read from the rollup and again from the
    cache of settled days the first read filled."""
    # The examples write into days earlier examples read (all long over by the real
    # clock), which no event written at the present instant can do: start uncached.
    dashboard.settled_days.clear()
    for micros, kind, account, actor in writes:
        record_at(
            anchor + timedelta(microseconds=micros),
            kind=kind,
            acting_user=cast["actors"][actor],
            account=cast["accounts"][account],
        )
    tz = ZoneInfo(zone)
    around = dashboard.dashboard_period(
        today=(anchor + timedelta(days=4)).astimezone(tz).date(), days=9, time_zone=tz
    )
    ending = dashboard.dashboard_period(today=anchor.astimezone(tz).date(), days=9, time_zone=tz)
    # Ends at the anchor where the anchor is midnight in the zone.
    before = dashboard.dashboard_period(
        today=(anchor - timedelta(microseconds=1)).astimezone(tz).date(), days=9, time_zone=tz
    )
    last_midnight = ending.end - timedelta(days=1)  # near enough, for a clock to read at
    # Each read as the view would at that moment: the first of a period from the rollup;
    # the next ones take the settled days from the cache and read the rest (the last day,
    # or the last two within an hour of midnight) from their quarter hours alone, here
    # where the writes crowd around a midnight; at the real clock every day is settled.
    reads = [
        (ending, last_midnight + timedelta(minutes=30)),
        (ending, last_midnight + timedelta(minutes=30)),
        (ending, ending.end - timedelta(minutes=1)),
        (ending, ending.end - timedelta(minutes=1)),
        (before, before.end - timedelta(minutes=1)),
        (before, before.end - timedelta(minutes=1)),
        (around, around.end + timedelta(minutes=30)),
        (around, around.end + timedelta(minutes=30)),
        (around, None),
        (ending, None),
    ]
    for period, now in reads:
        for viewer, practice_id in cast["viewers"]:
            counted = dashboard.audit_daily_counts(
                viewer=viewer, practice_id=practice_id, period=period, now=now
            )
            assert counted == raw_counts(viewer, practice_id, period), (viewer, practice_id)
            assert all(type(events) is int for events in counted.values())  # not Decimal
            agents = dashboard.audit_top_agents(
                viewer=viewer, practice_id=practice_id, period=period, limit=100, now=now
            )
            assert {a.user_id: a.failures for a in agents} == raw_agents(
                viewer, practice_id, period
            )
    # Every day, in each of the three scopes.
    assert len(dashboard.settled_days) == 3 * len({*around.days, *ending.days, *before.days})


def test_a_rolled_back_event_is_not_counted(provider):
    before = [AuditEventCount.objects.count(), AuditEventDayCount.objects.count()]
    with pytest.raises(RuntimeError), transaction.atomic():
        record_at(timezone.now(), acting_user=provider, account=provider)
        raise RuntimeError("the action failed")
    assert [AuditEventCount.objects.count(), AuditEventDayCount.objects.count()] == before


def test_the_counter_of_a_quarter_hour_grows_and_the_next_one_starts(provider):
    start = datetime(2024, 3, 18, 18, 15, tzinfo=UTC)
    for moment in (start, start + timedelta(minutes=14, seconds=59.999999), start + rollup.BUCKET):
        record_at(moment, kind=kinds.SUPPORT_PIN_VIEWED, acting_user=provider, account=provider)
    rows = AuditEventCount.objects.filter(kind=kinds.SUPPORT_PIN_VIEWED.code).order_by("bucket")
    assert [(row.bucket, row.count) for row in rows] == [
        (rollup.bucket_of(start), 2),
        (rollup.bucket_of(start) + 1, 1),
    ]
    assert rows[0].practice_ref == provider.practice_id and rows[0].actor_ref == 0


def test_the_migration_counts_the_events_already_written(provider, agent):
    """The rebuild the migration runs gives the counters the writer keeps."""
    for hours in range(5):
        record_at(
            datetime(2024, 3, 18, 16, tzinfo=UTC) + timedelta(hours=hours, microseconds=hours),
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED,
            acting_user=agent,
            account=provider,
        )
    columns = ("practice_ref", "kind", "actor_ref", "count")
    kept = [
        sorted(AuditEventCount.objects.values_list("bucket", *columns)),
        sorted(AuditEventDayCount.objects.values_list("day", *columns)),
    ]
    AuditEventCount.objects.all().delete()
    AuditEventDayCount.objects.all().delete()
    for statement in rollup.rebuild_sql(connection.vendor):
        sql(statement, [])
    rebuilt = [
        sorted(AuditEventCount.objects.values_list("bucket", *columns)),
        sorted(AuditEventDayCount.objects.values_list("day", *columns)),
    ]
    assert rebuilt == kept
    failed = kinds.SUPPORT_PIN_VALIDATION_FAILED.code
    first = rollup.bucket_of(datetime(2024, 3, 18, 16, tzinfo=UTC))
    assert (first, provider.practice_id, failed, agent.pk, 1) in kept[0]
    assert (first // 96, provider.practice_id, failed, agent.pk, 5) in kept[1]


def test_a_day_in_kathmandu_is_midnight_to_midnight_there(provider, compliance):
    tz = ZoneInfo("Asia/Kathmandu")
    for moment in (
        KATHMANDU_MIDNIGHT - timedelta(microseconds=1),  # 03/18 23:59:59.999999
        KATHMANDU_MIDNIGHT,  # 03/19 00:00
        KATHMANDU_MIDNIGHT + timedelta(hours=23, minutes=59),
    ):
        record_at(moment, acting_user=provider, account=provider)
    period = dashboard.dashboard_period(
        today=KATHMANDU_MIDNIGHT.astimezone(tz).date(), days=2, time_zone=tz
    )
    counted = dashboard.audit_daily_counts(viewer=compliance, practice_id=None, period=period)
    day = KATHMANDU_MIDNIGHT.astimezone(tz).date()
    assert counted == {
        (day - timedelta(days=1), kinds.SIGNED_IN.code): 1,
        (day, kinds.SIGNED_IN.code): 2,
    }


def test_a_daylight_saving_day_has_its_own_length():
    tz = ZoneInfo("America/New_York")
    period = dashboard.dashboard_period(
        today=NEW_YORK_SPRING.astimezone(tz).date(), days=2, time_zone=tz
    )
    stretches = dashboard.offset_stretches(period)
    assert [offset for _bucket, offset in stretches] == [-20, -16]  # -5:00, then -4:00
    assert stretches[1][0] == rollup.bucket_of(NEW_YORK_SPRING)
    assert rollup.bucket_of(period.end) - rollup.bucket_of(period.start) == 47 * 4  # 47 hours


def test_an_officer_reads_only_their_practice(compliance, other_practice, provider, other_provider):
    now = timezone.now()
    record_at(now, acting_user=provider, account=provider)
    record_at(now, acting_user=other_provider, account=other_provider)
    tz = ZoneInfo(compliance.time_zone)
    period = dashboard.dashboard_period(today=now.astimezone(tz).date(), days=7, time_zone=tz)
    counted = dashboard.audit_daily_counts(viewer=compliance, practice_id=None, period=period)
    assert counted[(now.astimezone(tz).date(), kinds.SIGNED_IN.code)] == 1  # not 2
    # Asking for another practice's counts is refused, not answered with their numbers.
    with pytest.raises(PermissionDenied):
        dashboard.audit_daily_counts(
            viewer=compliance, practice_id=other_practice.pk, period=period
        )


@pytest.mark.parametrize(
    "role", [Role.PROVIDER, Role.NURSE, Role.SUPPORT_AGENT, Role.PRACTICE_ADMIN]
)
def test_no_one_else_reads_the_counts(role, practice):
    viewer = make_user(role, practice=practice if role != Role.SUPPORT_AGENT else None)
    tz = ZoneInfo("UTC")
    period = dashboard.dashboard_period(today=timezone.now().date(), days=7, time_zone=tz)
    with pytest.raises(PermissionDenied):
        dashboard.audit_daily_counts(viewer=viewer, practice_id=None, period=period)


def test_break_glass_open_and_awaiting_review(compliance, auditor, provider, other_provider, agent):
    from break_glass.services import break_glass_open, break_glass_review

    with transaction.atomic():
        opened = [
            break_glass_open(
                acting_user=agent,
                account=account,
                justification="Caller lost the phone with the authenticator app",
                minutes=15,
                ip=None,
            )
            for account in (provider, provider, other_provider)
        ]
    now = timezone.now()
    status = dashboard.break_glass_status(viewer=compliance, practice_id=None, now=now)
    assert status == dashboard.BreakGlassStatus(open=2, awaiting_review=0)
    later = now + timedelta(minutes=20)
    assert dashboard.break_glass_status(viewer=auditor, practice_id=None, now=later) == (
        dashboard.BreakGlassStatus(open=0, awaiting_review=3)
    )
    import time_machine

    with time_machine.travel(later, tick=False):
        break_glass_review(
            grant=opened[0],
            acting_user=compliance,
            outcome="justified",
            note="Checked the call recording",
            ip=None,
        )
    assert dashboard.break_glass_status(viewer=compliance, practice_id=None, now=later) == (
        dashboard.BreakGlassStatus(open=0, awaiting_review=1)
    )


def test_per_day_by_type_sums_each_days_kinds_into_their_types():
    tz = ZoneInfo("America/New_York")
    period = dashboard.dashboard_period(today=datetime(2026, 11, 24).date(), days=7, time_zone=tz)
    first, last = period.days[0], period.days[-1]
    counts = {
        (last, kinds.SUPPORT_PIN_VIEWED.code): 2,
        (last, kinds.SUPPORT_PIN_VALIDATION_FAILED.code): 3,
        (first, kinds.SIGNED_IN.code): 5,
        (last, kinds.SIGNED_IN.code): 17,
        (first, kinds.PATIENT_CHART_VIEWED.code): 7,
        (last, "no.such_kind"): 11,  # a kind this version does not know: not a type's
    }
    by_kind = {}
    for (day, code), events in counts.items():
        by_kind.setdefault(code, [0] * 7)[period.days.index(day)] = events
    by_type = dashboard.per_day_by_type(by_kind, period)
    assert set(by_type) == {value for value, _label in kinds.EventType.choices}
    expected = {value: [0] * 7 for value in by_type}
    for (day, code), events in list(counts.items())[:5]:
        expected[kinds.KINDS[code].type.value][period.days.index(day)] += events
    assert by_type == expected
