"""Reads for the compliance dashboard: counts per day in the viewer's zone, from the rollup.

Every count comes from `AuditEventCount` (audit/rollup.py), scoped as the
Audit Log Report scopes events (`audit_event_scope`): a compliance officer's
practice, or for a platform auditor every practice or the one chosen. A day is
midnight to midnight in the viewer's time zone; its buckets are found in SQL,
one arithmetic expression per stretch of the period with one UTC offset
(a daylight-saving change splits a period in two), so the database returns one
row per day and kind whatever the size of the log.
"""

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, IntegerField, QuerySet, Sum, Value, When
from django.db.models.expressions import ExpressionWrapper

from accounts.models import User
from audit import kinds
from audit.models import AuditEventCount
from audit.rollup import BUCKET_SECONDS, bucket_of, bucket_start
from break_glass.models import BreakGlassGrant
from ehr.policies import AuditScope, audit_scope

PERIODS = (7, 30, 90)  # days the dashboard offers, today included
DEFAULT_PERIOD = 30
TOP_AGENTS = 10  # agents listed by failed validations
BUCKETS_PER_DAY = 86400 // BUCKET_SECONDS
EPOCH_DAY = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Period:
    """The last `len(days)` days in the viewer's zone, today included, and their UTC bounds."""

    days: list[date]
    start: datetime  # the first day's midnight, in the viewer's zone
    end: datetime  # the midnight after the last day
    time_zone: ZoneInfo


def dashboard_period(*, today: date, days: int, time_zone: ZoneInfo) -> Period:
    first = today - timedelta(days=days - 1)
    return Period(
        days=[first + timedelta(days=n) for n in range(days)],
        start=datetime.combine(first, time.min, tzinfo=time_zone),
        end=datetime.combine(today + timedelta(days=1), time.min, tzinfo=time_zone),
        time_zone=time_zone,
    )


def dashboard_practice_id(*, viewer: User, chosen: int | None) -> int | None:
    """Return the practice whose counts `viewer` reads (None: every practice).

    A compliance officer reads their own practice, whatever was asked; a platform
    auditor every practice or the one chosen. Anyone else reads nothing.
    """
    scope = audit_scope(viewer)
    if scope is AuditScope.ALL:
        return chosen
    if scope is AuditScope.PRACTICE and chosen in (None, viewer.practice_id):
        return viewer.practice_id
    raise PermissionDenied


def _scoped_counts(*, viewer: User, practice_id: int | None) -> QuerySet[AuditEventCount]:
    counts = AuditEventCount.objects.all()
    practice_id = dashboard_practice_id(viewer=viewer, chosen=practice_id)
    return counts if practice_id is None else counts.filter(practice_ref=practice_id)


def _offset_buckets(moment: datetime, time_zone: ZoneInfo) -> int:
    offset = int(moment.astimezone(time_zone).utcoffset().total_seconds())
    if offset % BUCKET_SECONDS:
        raise ValueError(f"{time_zone.key} is not offset from UTC by whole quarter hours")
    return offset // BUCKET_SECONDS


def offset_stretches(period: Period) -> list[tuple[int, int]]:
    """Return (first bucket, offset in buckets) of each stretch of the period with one offset."""
    tz = period.time_zone
    first = bucket_of(period.start)
    stretches = [(first, _offset_buckets(period.start, tz))]
    for day in period.days:
        low = bucket_of(datetime.combine(day, time.min, tzinfo=tz))
        high = bucket_of(datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz))
        if _offset_buckets(_instant(high - 1), tz) == stretches[-1][1]:
            continue
        # The offset changed during this day: find its first bucket with the new one.
        while high - low > 1:
            middle = (low + high) // 2
            if _offset_buckets(_instant(middle), tz) == stretches[-1][1]:
                low = middle
            else:
                high = middle
        stretches.append((high, _offset_buckets(_instant(high), tz)))
    return stretches


def _instant(bucket: int) -> datetime:
    return bucket_start(bucket)


def local_day_expression(period: Period):
    """Return SQL for the viewer's day of a bucket: days since 1970-01-01 in their zone."""

    def day(offset: int):
        return ExpressionWrapper(
            (F("bucket") + Value(offset)) / Value(BUCKETS_PER_DAY), output_field=IntegerField()
        )

    stretches = offset_stretches(period)
    if len(stretches) == 1:
        return day(stretches[0][1])
    whens = [
        When(bucket__lt=following[0], then=day(offset))
        for (_start, offset), following in itertools.pairwise(stretches)
    ]
    return Case(*whens, default=day(stretches[-1][1]), output_field=IntegerField())


def audit_daily_counts(
    *, viewer: User, practice_id: int | None, period: Period
) -> dict[tuple[date, str], int]:
    """Return {(day, kind code): events} for the viewer's scope over the period, in one query."""
    rows = (
        _scoped_counts(viewer=viewer, practice_id=practice_id)
        .filter(bucket__gte=bucket_of(period.start), bucket__lt=bucket_of(period.end))
        .annotate(day=local_day_expression(period))
        .values("day", "kind")
        .annotate(events=Sum("count"))
        .order_by()
    )
    return {(date.fromordinal(EPOCH_DAY + row["day"]), row["kind"]): row["events"] for row in rows}


@dataclass(frozen=True)
class AgentFailures:
    user_id: int
    username: str
    label: str
    failures: int


def audit_top_agents(
    *, viewer: User, practice_id: int | None, period: Period, limit: int = TOP_AGENTS
) -> list[AgentFailures]:
    """Return the agents with the most failed Support PIN validations in the period, most first.

    Counted over the accounts in the viewer's scope (an officer sees the agents'
    failures on their own practice's accounts only). Two queries.
    """
    from audit.services import user_label

    rows = list(
        _scoped_counts(viewer=viewer, practice_id=practice_id)
        .filter(
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code,
            bucket__gte=bucket_of(period.start),
            bucket__lt=bucket_of(period.end),
        )
        .exclude(actor_ref=0)
        .values("actor_ref")
        .annotate(failures=Sum("count"))
        .order_by("-failures", "actor_ref")[:limit]
    )
    users = User.objects.select_related("provider_profile").in_bulk(
        [row["actor_ref"] for row in rows]
    )
    found = []
    for row in rows:
        user = users.get(row["actor_ref"])
        if user is None:  # deleted since: the count stays, named by its id
            label, username = f"user #{row['actor_ref']}", ""
        else:
            label, username = user_label(user), user.username
        found.append(AgentFailures(row["actor_ref"], username, label, row["failures"]))
    return found


@dataclass(frozen=True)
class BreakGlassStatus:
    open: int  # still within their time limit
    awaiting_review: int  # ended, not reviewed yet


def break_glass_status(*, viewer: User, practice_id: int | None, now: datetime) -> BreakGlassStatus:
    """Count the break-glass grants the viewer oversees that are open or await review (one query)."""
    grants = BreakGlassGrant.objects.filter(reviewed_at__isnull=True)
    practice_id = dashboard_practice_id(viewer=viewer, chosen=practice_id)
    if practice_id is not None:
        grants = grants.filter(account__practice_id=practice_id)
    totals = grants.aggregate(
        open=Sum(Case(When(expires_at__gt=now, then=1), default=0)),
        awaiting=Sum(Case(When(expires_at__lte=now, then=1), default=0)),
    )
    return BreakGlassStatus(totals["open"] or 0, totals["awaiting"] or 0)


def per_day(counts: dict[tuple[date, str], int], period: Period, codes) -> dict[str, list[int]]:
    """Return each code's count for every day of the period, in order (0 where none)."""
    return {code: [counts.get((day, code), 0) for day in period.days] for code in codes}


def per_day_by_type(counts: dict[tuple[date, str], int], period: Period) -> dict[str, list[int]]:
    """Return each event type's count for every day, summing its kinds."""
    totals: dict[tuple[date, str], int] = defaultdict(int)
    for (day, code), events in counts.items():
        kind = kinds.KINDS.get(code)
        if kind is not None:
            totals[(day, kind.type.value)] += events
    return per_day(totals, period, [value for value, _label in kinds.EventType.choices])
