"""Reads for the compliance dashboard: counts per day in the viewer's zone, from the rollup.

Every count comes from `AuditEventCount` (audit/rollup.py), scoped as the
Audit Log Report scopes events (`audit_event_scope`): a compliance officer's
practice, or for a platform auditor every practice or the one chosen. A day is
midnight to midnight in the viewer's time zone; its buckets are found in SQL,
one arithmetic expression per stretch of the period with one UTC offset
(a daylight-saving change splits a period in two), so the database returns one
row per day and kind whatever the size of the log.
"""

import bisect
import functools
import itertools
import operator
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Case, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.expressions import ExpressionWrapper
from django.utils import timezone

from accounts.models import User
from audit import kinds
from audit.models import AuditEventCount, AuditEventDayCount
from audit.rollup import BUCKET_SECONDS, EPOCH, bucket_of, bucket_start
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


def _scoped(model, *, viewer: User, practice_id: int | None, using: str) -> QuerySet:
    rows = model.objects.using(using)
    practice_id = dashboard_practice_id(viewer=viewer, chosen=practice_id)
    return rows if practice_id is None else rows.filter(practice_ref=practice_id)


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


Piece = tuple[date | None, int, int]  # a viewer's day (None: outside the period), buckets


def utc_day_pieces(period: Period) -> dict[int, list[Piece]]:
    """Split each UTC day the period touches at the viewer's midnights.

    Return {UTC day: [(the viewer's day, first bucket, bucket after), ...]}; a piece
    before or after the period has no day.
    """
    tz = period.time_zone
    bounds = [datetime.combine(day, time.min, tzinfo=tz) for day in period.days] + [period.end]
    for moment in bounds:
        _offset_buckets(moment, tz)  # refuses a zone not offset by whole quarter hours
    bounds = [bucket_of(moment) for moment in bounds]
    pieces = {}
    for utc_day in range(bounds[0] // BUCKETS_PER_DAY, (bounds[-1] - 1) // BUCKETS_PER_DAY + 1):
        low, high = utc_day * BUCKETS_PER_DAY, (utc_day + 1) * BUCKETS_PER_DAY
        cuts = sorted({low, high, *(b for b in bounds if low < b < high)})
        found = []
        for first, after in itertools.pairwise(cuts):
            index = bisect.bisect_right(bounds, first) - 1
            inside = 0 <= index < len(period.days)
            found.append((period.days[index] if inside else None, first, after))
        pieces[utc_day] = found
    return pieces


def _rolled_up(
    *,
    viewer: User,
    practice_id: int | None,
    period: Period,
    keys: tuple[str, ...],
    using: str = DEFAULT_DB_ALIAS,
    **filters,
) -> dict[tuple[date, tuple], int]:
    """Return {(the viewer's day, the values of `keys`): events} in two queries.

    Whole UTC days come from the day counters; of each UTC day split by the
    viewer's midnight, the smaller part (a few hours at most for most zones) is
    read from the quarter-hour counters and the larger part is the day's count
    less it. So a 90-day period reads some 90 day counters per kind and a fraction
    of its quarter hours, not all 8,640 of them.
    """
    pieces = utc_day_pieces(period)
    read = {}  # the pieces read from quarter hours, by UTC day
    for utc_day, parts in pieces.items():
        largest = max(parts, key=lambda part: part[2] - part[1])
        read[utc_day] = [part for part in parts if part is not largest]
    days = (
        _scoped(AuditEventDayCount, viewer=viewer, practice_id=practice_id, using=using)
        .filter(day__gte=min(pieces), day__lte=max(pieces), **filters)
        .values("day", *keys)
        .annotate(events=Sum("count"))
        .order_by()
    )
    # The quarter hours read: for each run of UTC days split alike (one run, or two
    # around a daylight-saving change), the same part of every day, by its phase (the
    # quarter hour of the UTC day), so the database reads one range per run, not one
    # per day. Rows come back per UTC day and slot: slots end where a read part ends,
    # so no slot spans two parts of one day.
    phases = {
        utc_day: tuple(
            (first - utc_day * BUCKETS_PER_DAY, after - utc_day * BUCKETS_PER_DAY)
            for _d, first, after in parts
        )
        for utc_day, parts in read.items()
    }
    runs = []  # (first UTC day, last UTC day, phase ranges)
    for utc_day in sorted(phases):
        if runs and runs[-1][1] == utc_day - 1 and runs[-1][2] == phases[utc_day]:
            runs[-1][1] = utc_day
        else:
            runs.append([utc_day, utc_day, phases[utc_day]])
    ranges = [
        Q(
            bucket__gte=first_day * BUCKETS_PER_DAY,
            bucket__lt=(last_day + 1) * BUCKETS_PER_DAY,
            phase__gte=low,
            phase__lt=high,
        )
        for first_day, last_day, ranges_of_day in runs
        for low, high in ranges_of_day
    ]
    ends = sorted({high for ranges_of_day in phases.values() for _low, high in ranges_of_day})
    parts_read: dict[tuple[int, int, tuple], int] = {}
    if ranges:
        slot = Case(
            *[When(phase__lt=end, then=Value(n)) for n, end in enumerate(ends)],
            default=Value(len(ends)),
            output_field=IntegerField(),
        )
        rows = (
            _scoped(AuditEventCount, viewer=viewer, practice_id=practice_id, using=using)
            .annotate(
                phase=ExpressionWrapper(
                    F("bucket") % Value(BUCKETS_PER_DAY), output_field=IntegerField()
                ),
                utc_day=ExpressionWrapper(
                    F("bucket") / Value(BUCKETS_PER_DAY), output_field=IntegerField()
                ),
            )
            .filter(functools.reduce(operator.or_, ranges), **filters)
            .annotate(slot=slot)
            .values("utc_day", "slot", *keys)
            .annotate(events=Sum("count"))
            .order_by()
        )
        for row in rows:
            # The slot's phases: from the end before it to its own end.
            low = ends[row["slot"] - 1] if row["slot"] else 0
            for n, (start, stop) in enumerate(phases[row["utc_day"]]):
                if (
                    start < (ends[row["slot"]] if row["slot"] < len(ends) else BUCKETS_PER_DAY)
                    and stop > low
                ):
                    part = (row["utc_day"], n, tuple(row[k] for k in keys))
                    parts_read[part] = parts_read.get(part, 0) + row["events"]
                    break
    counted: dict[tuple[date, tuple], int] = defaultdict(int)
    for row in days:
        utc_day, value, rest = row["day"], tuple(row[k] for k in keys), row["events"]
        for n, part in enumerate(read[utc_day]):
            events = parts_read.get((utc_day, n, value), 0)
            rest -= events
            if part[0] is not None and events:
                counted[(part[0], value)] += events
        (largest,) = [p for p in pieces[utc_day] if p not in read[utc_day]]
        if largest[0] is not None and rest:
            counted[(largest[0], value)] += rest
    return dict(counted)


@dataclass(frozen=True)
class DashboardCounts:
    by_kind: dict[str, list[int]]  # {kind code: its events on each day of the period, in order}
    failures_by_agent: dict[int, int]  # {acting user id: failed validations in the period}
    settled: int = 0  # the period's first days that have settled (`SettledDays`)


@dataclass(frozen=True)
class DayCounts:
    """One day's counts in one scope: what the settled-day cache holds."""

    by_kind: dict[str, int]  # {kind code: events}
    failures_by_agent: dict[int, int]  # {acting user id: failed validations}


NO_EVENTS = DayCounts({}, {})


class SettledDays:
    """The counts of days that have settled, by (scope, zone, day), least recently used out.

    A day's counts stop changing once it has ended: every event is stamped with
    the present instant (`audit_event_record`), so none is written into a day
    that is over. Over, allowing for stragglers: an event stamped just before
    midnight commits with its caller's transaction, and a replica replays it
    later still, so a day is cached only once `settled_after` has passed since
    its end (AUDIT_DASHBOARD_SETTLED_AFTER), and, read from a standby, only once
    the standby has replayed the primary's commits that far (a standby hours
    behind would otherwise leave a day's short count in the cache). Today, and
    yesterday for that while, are always read from the rollup.

    The key is the practice whose counts were read as `dashboard_practice_id`
    resolved it for the viewer (None: every practice, the platform auditor's
    view), never the practice asked for, so a cached day is handed only to a
    viewer whose scope is exactly the one it was counted in. It holds at most
    AUDIT_DASHBOARD_CACHED_DAYS days, in this process (each worker keeps its
    own: counts that cannot change need no sharing to stay right).
    """

    def __init__(self) -> None:
        self._days: OrderedDict[tuple, DayCounts] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> DayCounts | None:
        return self.get_many([key])[0]

    def get_many(self, keys: list[tuple]) -> list[DayCounts | None]:
        """Return what is cached for each key (None where nothing is), under one lock."""
        found = []
        with self._lock:
            for key in keys:
                counts = self._days.get(key)
                if counts is not None:
                    self._days.move_to_end(key)
                found.append(counts)
        return found

    def put(self, key: tuple, counts: DayCounts, *, limit: int) -> None:
        with self._lock:
            self._days[key] = counts
            self._days.move_to_end(key)
            while len(self._days) > limit:
                self._days.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._days.clear()

    def __len__(self) -> int:
        return len(self._days)


settled_days = SettledDays()
QUARTER_HOURS_ONLY = 2  # days left to read, at most, that are read from quarter hours alone
SETTLED_AFTER = timedelta(hours=1)  # default of AUDIT_DASHBOARD_SETTLED_AFTER
CACHED_DAYS = 2000  # default of AUDIT_DASHBOARD_CACHED_DAYS: a few MB at most


def _settled_after() -> timedelta:
    return getattr(settings, "AUDIT_DASHBOARD_SETTLED_AFTER", SETTLED_AFTER)


def _cached_days() -> int:
    return getattr(settings, "AUDIT_DASHBOARD_CACHED_DAYS", CACHED_DAYS)


def audit_dashboard_counts(
    *,
    viewer: User,
    practice_id: int | None,
    period: Period,
    using: str = DEFAULT_DB_ALIAS,
    now: datetime | None = None,
) -> DashboardCounts:
    """Return the period's counts per day and kind, and failed validations per agent, in the
    viewer's scope, read from database `using` (the replica, for the dashboard: ehr/db.py).

    Days settled by `now` come from the cache (`SettledDays`) when it has them; the
    rest, from the first day missing to the last, in two queries (the agents'
    counters are rows of the same tables), which also fill the cache.
    """
    scope = dashboard_practice_id(viewer=viewer, chosen=practice_id)
    now = timezone.now() if now is None else now
    settled_before = now - _settled_after()
    limit = _cached_days()
    zone = period.time_zone.key
    # Days settle in order, so the settled ones are the period's first `settled`.
    settled = len(period.days) if limit else 0
    while settled and _day_end(period.days[settled - 1], period.time_zone) > settled_before:
        settled -= 1
    cached = settled_days.get_many([(scope, zone, day) for day in period.days[:settled]])
    found: dict[date, DayCounts] = {}
    missing = []
    for n, day in enumerate(period.days):
        counts = cached[n] if n < settled else None
        if counts is None:
            missing.append(day)
        else:
            found[day] = counts
    if missing:
        read = dashboard_period(
            today=missing[-1], days=(missing[-1] - missing[0]).days + 1, time_zone=period.time_zone
        )
        if limit and _day_end(missing[0], period.time_zone) <= settled_before:
            # Days to cache: none a transaction still open on the primary may yet write
            # into, and from a standby only those it has replayed an hour past; both asked
            # before the counts are read (so they hold at least that much).
            started = _oldest_open_write()
            if started is not None:
                settled_before = min(settled_before, started - _settled_after())
            if using != DEFAULT_DB_ALIAS:
                settled_before = min(settled_before, _replayed_until(using) - _settled_after())
        if len(read.days) <= QUARTER_HOURS_ONLY:
            fresh = _day_counts(_quarter_hour_counts(scope=scope, period=read, using=using))
        else:
            fresh = _day_counts(
                _rolled_up(
                    viewer=viewer,
                    practice_id=scope,
                    period=read,
                    keys=("kind", "actor_ref"),
                    using=using,
                )
            )
        for day in read.days:
            counts = fresh.get(day, NO_EVENTS)
            if limit and _day_end(day, period.time_zone) <= settled_before:
                settled_days.put((scope, zone, day), counts, limit=limit)
            found.setdefault(day, counts)
    by_kind: dict[str, list[int]] = {}
    by_agent: dict[int, int] = defaultdict(int)
    for n, day in enumerate(period.days):
        counts = found[day]
        for kind, events in counts.by_kind.items():
            column = by_kind.get(kind)
            if column is None:
                column = by_kind[kind] = [0] * len(period.days)
            column[n] = events
        for actor, events in counts.failures_by_agent.items():
            by_agent[actor] += events
    return DashboardCounts(by_kind, dict(by_agent), settled)


def _replayed_until(using: str) -> datetime:
    """Return the commit time of the last transaction standby `using` has replayed (every
    earlier one is replayed too; 1970 if none yet).

    A database that is not a streaming standby (a logical subscriber, an address set
    wrongly) says nothing of what it holds: 1970, so no day read from it is cached.
    """
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()")
        standby, replayed = cursor.fetchone()
    if not standby:
        return EPOCH
    return replayed or EPOCH


def _oldest_open_write() -> datetime | None:
    """Return when the oldest transaction that has written and not yet ended began, on the
    primary (PostgreSQL), or None.

    Its events, stamped when written, are after that moment; none before it can still
    appear. A day that ends later may yet gain events when such a transaction commits,
    however long it has been open, so it is not cached. SQLite, the embedded default,
    has one writer at a time and no such view: there the settling time alone decides.
    """
    primary = connections[DEFAULT_DB_ALIAS]
    if primary.vendor != "postgresql":
        return None
    with primary.cursor() as cursor:
        # The server reads its activity once a transaction: a caller's own transaction
        # would otherwise see what the first look saw.
        cursor.execute(
            "SELECT pg_stat_clear_snapshot(); "
            "SELECT min(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        cursor.nextset()
        (started,) = cursor.fetchone()
    return started


def _quarter_hour_counts(
    *, scope: int | None, period: Period, using: str
) -> dict[tuple[date, tuple], int]:
    """Return {(the viewer's day, (kind, actor)): events} of a short period, in one query.

    What the cache leaves to read on most views: today, and yesterday for a while
    after midnight. Their quarter hours are at most 2 x 96 counters per kind, summed
    by the database per day; SQL written here rather than by the ORM, whose
    compiling of the query cost more than the database's answer (bench/README.md).
    """
    tz = period.time_zone
    midnights = [datetime.combine(day, time.min, tzinfo=tz) for day in period.days]
    for moment in [*midnights, period.end]:
        _offset_buckets(moment, tz)  # refuses a zone not offset by whole quarter hours
    bounds = [bucket_of(moment) for moment in [*midnights, period.end]]
    # The day's index in the period: the first of its midnights the bucket is before.
    inner = bounds[1:-1]
    whens = " ".join(f"WHEN bucket < %s THEN {n:d}" for n in range(len(inner)))
    day = f"CASE {whens} ELSE {len(inner):d} END" if inner else "0"
    params: list = list(inner)
    where = "bucket >= %s AND bucket < %s"
    params += [bounds[0], bounds[-1]]
    if scope is not None:
        where += " AND practice_ref = %s"
        params.append(scope)
    sql = (
        f"SELECT {day}, kind, actor_ref, SUM(count) FROM {AuditEventCount._meta.db_table} "  # noqa: S608  # nosec B608  (fixed names, values as parameters)
        f"WHERE {where} GROUP BY 1, 2, 3"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # int(): PostgreSQL sums bigints as numeric, which psycopg hands back as Decimal.
    return {(period.days[n], (kind, actor)): int(events) for n, kind, actor, events in rows}


def _day_end(day: date, time_zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=time_zone)


_CODES = {code: code for code in kinds.KINDS}


def _day_counts(rows: dict[tuple[date, tuple], int]) -> dict[date, DayCounts]:
    """Group `_rolled_up`'s {(day, (kind, actor)): events} by day."""
    by_kind: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_agent: dict[date, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    failed = kinds.SUPPORT_PIN_VALIDATION_FAILED.code
    for (day, (kind, actor)), events in rows.items():
        # The code's one string (kinds.KINDS' key), not a copy per row: cached days share it.
        by_kind[day][_CODES.get(kind, kind)] += events
        if kind == failed and actor:
            by_agent[day][actor] += events
    return {
        day: DayCounts(dict(kinds_of_day), dict(by_agent.get(day, {})))
        for day, kinds_of_day in by_kind.items()
    }


def audit_daily_counts(
    *, viewer: User, practice_id: int | None, period: Period, now: datetime | None = None
) -> dict[tuple[date, str], int]:
    """Return {(day, kind code): events} for the viewer's scope over the period."""
    counted = audit_dashboard_counts(viewer=viewer, practice_id=practice_id, period=period, now=now)
    return {
        (day, kind): events
        for kind, column in counted.by_kind.items()
        for day, events in zip(period.days, column, strict=True)
        if events
    }


@dataclass(frozen=True)
class AgentFailures:
    user_id: int
    username: str
    label: str
    failures: int


def audit_top_agents(
    *,
    viewer: User,
    practice_id: int | None,
    period: Period,
    limit: int = TOP_AGENTS,
    now: datetime | None = None,
) -> list[AgentFailures]:
    """Return the agents with the most failed Support PIN validations in the period, most first.

    Counted over the accounts in the viewer's scope (an officer sees the agents'
    failures on their own practice's accounts only).
    """
    counts = audit_dashboard_counts(viewer=viewer, practice_id=practice_id, period=period, now=now)
    return top_agents(counts.failures_by_agent, limit=limit)


def top_agents(failures: dict[int, int], *, limit: int = TOP_AGENTS) -> list[AgentFailures]:
    """Rank agents by failures, most first, and name them (one query)."""
    from audit.services import user_label

    ranked = sorted(failures.items(), key=lambda item: (-item[1], item[0]))[:limit]
    users = User.objects.select_related("provider_profile").in_bulk([a for a, _n in ranked])
    found = []
    for actor, count in ranked:
        user = users.get(actor)
        if user is None:  # deleted since: the count stays, named by its id
            label, username = f"user #{actor}", ""
        else:
            label, username = user_label(user), user.username
        found.append(AgentFailures(actor, username, label, count))
    return found


@dataclass(frozen=True)
class BreakGlassStatus:
    open: int  # still within their time limit
    awaiting_review: int  # ended, not reviewed yet


def break_glass_status(*, viewer: User, practice_id: int | None, now: datetime) -> BreakGlassStatus:
    """Count the break-glass grants the viewer oversees that are open or await review (one query).

    Plain SQL, as the counts of today: the ORM took longer to compile the aggregate
    than the database to answer it (bench/README.md).
    """
    practice_id = dashboard_practice_id(viewer=viewer, chosen=practice_id)
    grants = BreakGlassGrant._meta.db_table
    connection = connections[DEFAULT_DB_ALIAS]
    moment = connection.ops.adapt_datetimefield_value(now)
    sql = (
        # Open: before its time and no end written (`BreakGlassGrant.is_open`).
        "SELECT COALESCE(SUM(CASE WHEN g.expires_at > %s AND g.expiry_recorded_at IS NULL "  # noqa: S608  # nosec B608  (fixed names, values as parameters)
        "THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN g.expires_at <= %s OR g.expiry_recorded_at IS NOT NULL "
        "THEN 1 ELSE 0 END), 0) "
        f"FROM {grants} g "
    )
    params = [moment, moment]
    if practice_id is not None:
        sql += f"JOIN {User._meta.db_table} u ON u.id = g.account_id AND u.practice_id = %s "
        params.append(practice_id)
    sql += "WHERE g.reviewed_at IS NULL"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        open_now, awaiting = cursor.fetchone()
    return BreakGlassStatus(open_now, awaiting)


def per_day(by_kind: dict[str, list[int]], period: Period, codes) -> dict[str, Sequence[int]]:
    """Return each code's count for every day of the period, in order (0 where none)."""
    none = (0,) * len(period.days)  # one for every code without events: never changed
    return {code: by_kind.get(code, none) for code in codes}


TYPE_OF = {code: kind.type.value for code, kind in kinds.KINDS.items()}  # kind code: its type


def per_day_by_type(by_kind: dict[str, list[int]], period: Period) -> dict[str, list[int]]:
    """Return each event type's count for every day, summing its kinds."""
    totals = {value: [0] * len(period.days) for value, _label in kinds.EventType.choices}
    for code, column in by_kind.items():
        kind_type = TYPE_OF.get(code)
        if kind_type is not None:  # a kind this version does not know has no type
            totals[kind_type] = list(map(operator.add, totals[kind_type], column))
    return totals
