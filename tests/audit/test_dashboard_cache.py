"""The dashboard's cache of settled days: never stale for today, never another scope's."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied

from accounts.roles import Role
from audit import dashboard, kinds
from tests.audit.helpers import record_at
from tests.audit.test_dashboard import raw_counts
from tests.factories import make_user

NEW_YORK = ZoneInfo("America/New_York")
# 03/19/2024 11:59:50 PM in New York (EDT, -4:00): ten seconds before its midnight.
BEFORE_MIDNIGHT = datetime(2024, 3, 20, 3, 59, 50, tzinfo=UTC)
DAY = BEFORE_MIDNIGHT.astimezone(NEW_YORK).date()  # 03/19
SIGNED_IN = kinds.SIGNED_IN.code


def counts_at(moment: datetime, viewer, practice_id=None, days=7, zone=NEW_YORK) -> dict:
    """Read the dashboard's counts as its view does at `moment`, in `zone`."""
    with time_machine.travel(moment, tick=False):
        period = dashboard.dashboard_period(
            today=moment.astimezone(zone).date(), days=days, time_zone=zone
        )
        return dashboard.audit_daily_counts(viewer=viewer, practice_id=practice_id, period=period)


def test_todays_events_are_counted_at_every_view(compliance, provider):
    yesterday = BEFORE_MIDNIGHT - timedelta(days=1)
    record_at(yesterday, acting_user=provider, account=provider)
    assert counts_at(BEFORE_MIDNIGHT, compliance) == {(DAY - timedelta(days=1), SIGNED_IN): 1}
    assert len(dashboard.settled_days) == 6  # the week but today
    for n in (1, 2):
        record_at(BEFORE_MIDNIGHT, acting_user=provider, account=provider)
        assert counts_at(BEFORE_MIDNIGHT, compliance)[(DAY, SIGNED_IN)] == n


def test_a_day_is_cached_only_once_its_stragglers_are_in(compliance, provider):
    """An event stamped before midnight can commit after it (its caller's transaction, a
    replica replaying it later): the day is read afresh until an hour after its end."""
    record_at(BEFORE_MIDNIGHT, acting_user=provider, account=provider)
    after_midnight = BEFORE_MIDNIGHT + timedelta(seconds=20)  # 03/20 00:00:10
    assert counts_at(after_midnight, compliance)[(DAY, SIGNED_IN)] == 1
    # Stamped 11:59:59 PM, seen by the dashboard only now.
    record_at(BEFORE_MIDNIGHT + timedelta(seconds=9), acting_user=provider, account=provider)
    assert counts_at(after_midnight + timedelta(minutes=30), compliance)[(DAY, SIGNED_IN)] == 2
    settled = after_midnight + timedelta(hours=1)
    assert counts_at(settled, compliance)[(DAY, SIGNED_IN)] == 2
    assert dashboard.settled_days.get((compliance.practice_id, NEW_YORK.key, DAY)) is not None
    assert counts_at(settled, compliance)[(DAY, SIGNED_IN)] == 2  # from the cache


def test_a_cached_day_that_is_no_longer_settled_is_read_afresh(compliance, provider, settings):
    """A longer settling time, set while the process runs, applies to what is cached too."""
    record_at(BEFORE_MIDNIGHT, acting_user=provider, account=provider)
    settled = BEFORE_MIDNIGHT + timedelta(hours=1, seconds=20)
    assert counts_at(settled, compliance)[(DAY, SIGNED_IN)] == 1  # and cached
    record_at(BEFORE_MIDNIGHT + timedelta(seconds=9), acting_user=provider, account=provider)
    settings.AUDIT_DASHBOARD_SETTLED_AFTER = timedelta(hours=3)
    assert counts_at(settled, compliance)[(DAY, SIGNED_IN)] == 2


@pytest.fixture
def two_practices(provider, other_provider):
    """Settled days with 3 sign-ins on the officer's practice and 5 on the other."""
    for n in range(3):
        record_at(
            BEFORE_MIDNIGHT - timedelta(days=2, hours=n), acting_user=provider, account=provider
        )
    for n in range(5):
        record_at(
            BEFORE_MIDNIGHT - timedelta(days=2, hours=n),
            acting_user=other_provider,
            account=other_provider,
        )
    return DAY - timedelta(days=2)


def test_a_cached_day_never_reaches_another_scope(
    two_practices, compliance, auditor, other_practice
):
    day = two_practices
    other_officer = make_user(
        Role.COMPLIANCE_OFFICER, practice=other_practice, username="other_officer"
    )
    # The auditor fills the cache first: every practice, then the other practice alone.
    assert counts_at(BEFORE_MIDNIGHT, auditor)[(day, SIGNED_IN)] == 8
    assert counts_at(BEFORE_MIDNIGHT, auditor, other_practice.pk)[(day, SIGNED_IN)] == 5
    # Each officer reads their own practice's figures, not the cached ones of a wider or
    # another scope, and again once their own are cached.
    for _view in range(2):
        assert counts_at(BEFORE_MIDNIGHT, compliance)[(day, SIGNED_IN)] == 3
        assert counts_at(BEFORE_MIDNIGHT, other_officer)[(day, SIGNED_IN)] == 5
        assert counts_at(BEFORE_MIDNIGHT, auditor)[(day, SIGNED_IN)] == 8
    # Naming the other practice, whose days are cached, is refused all the same.
    with pytest.raises(PermissionDenied):
        counts_at(BEFORE_MIDNIGHT, compliance, other_practice.pk)


def test_a_cached_day_never_reaches_an_officer_through_the_page(
    client, two_practices, compliance, auditor, other_practice
):
    client.force_login(auditor)
    with time_machine.travel(BEFORE_MIDNIGHT, tick=False):
        for query in ("?days=7", f"?days=7&practice={other_practice.group_id}"):
            assert client.get(f"/audit/dashboard/{query}").status_code == 200
        client.force_login(compliance)
        html = client.get("/audit/dashboard/?days=7").content.decode()
        refused = client.get(f"/audit/dashboard/?days=7&practice={other_practice.group_id}")
    # The sign-ins of the type chart's one day: the officer's 3, not 5 or 8.
    assert "Security, 03/17/2024: 3</title>" in html
    assert ": 5</title>" not in html and ": 8</title>" not in html
    assert refused.status_code == 400 and "<svg" not in refused.content.decode()


def test_a_day_is_cached_in_the_viewers_zone(compliance, provider, practice):
    """Midnight in Kolkata is 6:30 PM in London: the same date, different events."""
    kolkata = ZoneInfo("Asia/Kolkata")
    midnight = datetime(2024, 3, 18, 18, 30, tzinfo=UTC)  # 03/19 00:00 in Kolkata
    record_at(midnight - timedelta(minutes=1), acting_user=provider, account=provider)
    record_at(midnight + timedelta(minutes=1), acting_user=provider, account=provider)
    later = midnight + timedelta(days=3)
    in_kolkata = counts_at(later, compliance, zone=kolkata)
    in_utc = counts_at(later, compliance, zone=ZoneInfo("UTC"))
    march_18, march_19 = midnight.date(), midnight.date() + timedelta(days=1)
    assert in_kolkata == {(march_18, SIGNED_IN): 1, (march_19, SIGNED_IN): 1}
    assert in_utc == {(march_18, SIGNED_IN): 2}


def test_the_cache_holds_at_most_the_days_it_is_allowed(settings, compliance, provider):
    for n in range(20):
        record_at(BEFORE_MIDNIGHT - timedelta(days=n), acting_user=provider, account=provider)
    tz = NEW_YORK
    period = dashboard.dashboard_period(today=DAY, days=30, time_zone=tz)
    settings.AUDIT_DASHBOARD_CACHED_DAYS = 5
    for _view in range(2):
        assert counts_at(BEFORE_MIDNIGHT, compliance, days=30) == raw_counts(
            compliance, None, period
        )
        assert len(dashboard.settled_days) == 5
    settings.AUDIT_DASHBOARD_CACHED_DAYS = 0  # no cache
    dashboard.settled_days.clear()
    assert counts_at(BEFORE_MIDNIGHT, compliance, days=30) == raw_counts(compliance, None, period)
    assert len(dashboard.settled_days) == 0


@pytest.mark.postgres_only  # pg_stat_activity: the transactions open on the primary
def test_no_day_is_cached_that_an_open_transaction_may_still_write_into(compliance, provider):
    """A caller's transaction open for days (stamped at its start, committed at its end)
    keeps every day it may still write into out of the cache, however settled by the clock."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    real_now = datetime.now(UTC)
    later = real_now + timedelta(days=3)
    with psycopg.connect(**params) as other:
        other.execute("SELECT txid_current()")  # has written, as far as the server can tell
        counts_at(later, compliance)
        cached = {day for (scope, zone, day) in dashboard.settled_days._days}
        open_since = (real_now - timedelta(hours=1)).astimezone(NEW_YORK).date()
        assert cached and max(cached) < open_since
        other.rollback()
    counts_at(later, compliance)
    cached = {day for (scope, zone, day) in dashboard.settled_days._days}
    assert max(cached) >= open_since


@pytest.mark.postgres_only  # pg_is_in_recovery
def test_a_database_that_is_no_standby_vouches_for_no_day(db):
    """A "replica" that is not a streaming standby (a logical subscriber, an address set
    wrongly) cannot say what it has replayed: no day read from it is cached."""
    assert dashboard._replayed_until("default") == dashboard.EPOCH
