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
    if vendor == "postgresql":
        bucket = "FLOOR(EXTRACT(EPOCH FROM occurred_at) / 900)::bigint"
    else:  # SQLite keeps UTC datetimes as text
        bucket = "CAST(strftime('%%s', occurred_at) AS INTEGER) / 900"
    per_actor = ", ".join(f"'{code}'" for code in sorted(COUNTED_PER_ACTOR))
    actor = f"CASE WHEN kind IN ({per_actor}) THEN COALESCE(actor_ref, 0) ELSE 0 END"
    return [
        f"INSERT INTO {TABLE} (practice_ref, bucket, kind, actor_ref, count) "  # noqa: S608  # nosec B608  (fixed names and codes)
        f"SELECT COALESCE(practice_id, {NO_PRACTICE}), {bucket}, kind, {actor}, COUNT(*) "
        f"FROM audit_auditevent GROUP BY 1, 2, 3, 4",
        f"INSERT INTO {DAY_TABLE} (practice_ref, day, kind, actor_ref, count) "  # noqa: S608  # nosec B608  (fixed names)
        f"SELECT practice_ref, bucket / {BUCKETS_PER_DAY}, kind, actor_ref, SUM(count) "
        f"FROM {TABLE} GROUP BY 1, 2, 3, 4",
    ]
