"""The dashboard's rollup: events counted per practice, quarter hour (UTC) and kind.

Kept by the writer, not by a periodic job. `audit_event_record` adds one to the
event's counter (`AuditEventCount`) in the statement that appends the event,
under the chain's lock and inside the caller's transaction, so:

- the counts are exact at every moment: they commit and roll back with the
  events they count, and the dashboard needs no live tail over the raw events
  since a job's mark (and no job, cron line or mark to watch);
- the writers of one practice already take turns on the chain's lock, so the
  upsert of its counter never waits on anyone nor deadlocks, and writers of
  different practices touch different counters;
- on PostgreSQL it rides in the append's own statement (one more common table
  expression, prepared with it): no extra round trip, a few microseconds of
  the backend's time per event (bench/README.md). On SQLite it is one more
  statement in the transaction that already holds the write lock.

A periodic job would cost the write path nothing, but the dashboard would then
read the counts up to the job's mark plus every raw event after it, two reads
that must agree on the mark, and a job that stops makes every page slower.

Quarter hours (900 s) because every time zone in use today is offset from UTC
by whole quarter hours (India +5:30, Nepal +5:45, Chatham +12:45): a day in any
viewer's zone, midnight to midnight, is a whole number of buckets, so a day's
count is exact, never an estimate across an hour that straddles midnight.
"""

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import NamedTuple

from django.db import connection, transaction

from audit import kinds

BUCKET = timedelta(minutes=15)
BUCKET_SECONDS = 900
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Kinds whose counter also names the acting user: the dashboard ranks agents by them.
COUNTED_PER_ACTOR = frozenset({kinds.SUPPORT_PIN_VALIDATION_FAILED.code})
NO_PRACTICE = 0  # practice_ref of the events that belong to no practice (ids start at 1)


def bucket_of(moment: datetime) -> int:
    """Return the quarter hour since the epoch that `moment` (aware) falls in."""
    return (moment - EPOCH) // BUCKET


def bucket_start(bucket: int) -> datetime:
    return EPOCH + bucket * BUCKET


def counter_keys(
    *, practice_id: int | None, occurred_at: datetime, kind: str, actor_id: int | None
) -> list:
    """Return the two counters an event adds one to, as COUNT_SQL's parameters:
    [practice_ref, bucket, kind, actor_ref] and [practice_ref, UTC day, kind, actor_ref]."""
    actor = (actor_id or 0) if kind in COUNTED_PER_ACTOR else 0
    practice = practice_id or NO_PRACTICE
    bucket = bucket_of(occurred_at)
    return [practice, bucket, kind, actor, practice, bucket // BUCKETS_PER_DAY, kind, actor]


TABLE = "audit_auditeventcount"
DAY_TABLE = "audit_auditeventdaycount"
BUCKETS_PER_DAY = 96


def _upsert(table: str, column: str) -> str:
    columns = f"practice_ref, {column}, kind, actor_ref"
    # Add one to the counter, creating it at 1. Both databases take this form (SQLite
    # since 3.24).
    return (
        f"INSERT INTO {table} ({columns}, count) VALUES (%s, %s, %s, %s, 1) "  # noqa: S608  # nosec B608  (fixed names)
        f"ON CONFLICT ({columns}) DO UPDATE SET count = {table}.count + 1"
    )


COUNT_SQL = (_upsert(TABLE, "bucket"), _upsert(DAY_TABLE, "day"))


@cache
def rebuild_sql(vendor: str) -> list[str]:
    """Return the INSERT ... SELECTs that count every event into an empty rollup."""
    return _counting_sql(vendor, span=False)


@cache
def recount_sql(vendor: str) -> list[str]:
    """Return the INSERT ... SELECTs that count the events of a span into a rollup empty there.

    Parameters: the span's first and past-the-last instants, then its first and
    past-the-last quarter hours.
    """
    return _counting_sql(vendor, span=True)


def _counting_sql(vendor: str, *, span: bool) -> list[str]:
    if vendor == "postgresql":
        bucket = "FLOOR(EXTRACT(EPOCH FROM occurred_at) / 900)::bigint"
    else:
        # SQLite keeps UTC datetimes as text, and reads their fractions of a second
        # rounded to the millisecond: 23:59:59.9999 would count as the next day's
        # midnight. The whole seconds alone are floored, as the writer's bucket_of is.
        bucket = "CAST(strftime('%%s', substr(occurred_at, 1, 19)) AS INTEGER) / 900"
    per_actor = ", ".join(f"'{code}'" for code in sorted(COUNTED_PER_ACTOR))
    actor = f"CASE WHEN kind IN ({per_actor}) THEN COALESCE(actor_ref, 0) ELSE 0 END"
    events = "WHERE occurred_at >= %s AND occurred_at < %s " if span else ""
    buckets = "WHERE bucket >= %s AND bucket < %s " if span else ""
    return [
        f"INSERT INTO {TABLE} (practice_ref, bucket, kind, actor_ref, count) "  # noqa: S608  # nosec B608  (fixed names and codes)
        f"SELECT COALESCE(practice_id, {NO_PRACTICE}), {bucket}, kind, {actor}, COUNT(*) "
        f"FROM audit_auditevent {events}GROUP BY 1, 2, 3, 4",
        f"INSERT INTO {DAY_TABLE} (practice_ref, day, kind, actor_ref, count) "  # noqa: S608  # nosec B608  (fixed names)
        f"SELECT practice_ref, bucket / {BUCKETS_PER_DAY}, kind, actor_ref, SUM(count) "
        f"FROM {TABLE} {buckets}GROUP BY 1, 2, 3, 4",
    ]


class Counters(NamedTuple):
    """How many counters a step removed or wrote: quarter hours and UTC days."""

    quarter_hours: int
    days: int


def _whole_days(start: datetime, end: datetime) -> tuple[int, int]:
    """Return the first and past-the-last quarter hour of [start, end), UTC midnights both."""
    first, past = bucket_of(start), bucket_of(end)
    for moment, bucket in ((start, first), (end, past)):
        if moment != bucket_start(bucket) or bucket % BUCKETS_PER_DAY:
            raise ValueError(f"the rollup is kept by whole UTC days: {moment} is not a midnight")
    return first, past


def counters_remove(*, start: datetime, end: datetime) -> Counters:
    """Delete the counters of the UTC days from `start` to `end` (midnights, `end` excluded).

    For events that left the database: `audit_archive` calls it in the
    transaction that drops the month's partition, so the dashboard stops
    counting a month when the report stops listing it. Writers only ever add
    to the current quarter hour's counters, so this waits for none of them.
    """
    first, past = _whole_days(start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE bucket >= %s AND bucket < %s",  # noqa: S608  # nosec B608  (fixed names)
            [first, past],
        )
        quarter_hours = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {DAY_TABLE} WHERE day >= %s AND day < %s",  # noqa: S608  # nosec B608  (fixed names)
            [first // BUCKETS_PER_DAY, past // BUCKETS_PER_DAY],
        )
        return Counters(quarter_hours, cursor.rowcount)


def counters_held(*, start: datetime, end: datetime) -> Counters:
    """How many counters the UTC days from `start` to `end` hold (what `counters_remove`
    would delete)."""
    first, past = _whole_days(start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {TABLE} WHERE bucket >= %s AND bucket < %s), "  # noqa: S608  # nosec B608  (fixed names)
            f"(SELECT count(*) FROM {DAY_TABLE} WHERE day >= %s AND day < %s)",
            [first, past, first // BUCKETS_PER_DAY, past // BUCKETS_PER_DAY],
        )
        return Counters(*cursor.fetchone())


def counters_recount(*, start: datetime, end: datetime) -> Counters:
    """Count the events of the UTC days from `start` to `end` afresh; return the counters written.

    The span's counters are deleted and counted again from the events the
    database holds there, in one transaction: for a month restored into the
    event table (`manage.py audit_recount`), or counters left by a month
    archived before the archive removed them. Writers wait meanwhile: on
    PostgreSQL for the counter tables (taken EXCLUSIVE, which the append's own
    statement needs), on SQLite for the write lock the transaction holds from
    its start. An event whose writer waits is not yet committed, so not in
    the recount, and its writer counts it once the recount commits.
    """
    first, past = _whole_days(start, end)
    adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {TABLE}, {DAY_TABLE} IN EXCLUSIVE MODE")
        counters_remove(start=start, end=end)
        count_buckets, count_days = recount_sql(connection.vendor)
        cursor.execute(count_buckets, [adapt(start), adapt(end)])
        quarter_hours = cursor.rowcount
        cursor.execute(count_days, [first, past])
        return Counters(quarter_hours, cursor.rowcount)
