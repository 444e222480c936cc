"""Monthly partitions of the audit event table (PostgreSQL).

On PostgreSQL `audit_auditevent` is range-partitioned by month on
`occurred_at` (migration 0006): one table per month, named
`audit_auditevent_pYYYY_MM`, plus a DEFAULT partition that takes any event
whose month has no table yet, so an event never fails for want of a
partition. `manage.py audit_partitions`, run daily from cron, creates this
month and `AUDIT_PARTITION_MONTHS_AHEAD` months ahead; `manage.py audit_archive`
is the only code that removes one (docs/audit.md). SQLite keeps one table.

The append-only guards: PostgreSQL clones the parent's row trigger (refusing
UPDATE and DELETE) onto every partition, including partitions created later;
statement triggers are not cloned, so each partition gets its own TRUNCATE
guard here.

Creating a month whose events already sit in the DEFAULT partition (the cron
job stopped for a while, or events written with a clock far ahead) moves them:
PostgreSQL refuses to create a partition while the default holds rows of its
range, and the append-only guard refuses to delete them from it. So, in one
transaction holding the table's lock, the default is detached and renamed, a
new empty default and the month's table are attached, the old default's rows
are inserted through the parent (each lands in its month), and the old default
is dropped. Rows move by INSERT and DROP TABLE; none is ever deleted.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

TABLE = "audit_auditevent"
DEFAULT = f"{TABLE}_default"
CHAINS = "audit_auditchain"
PREFIX = f"{TABLE}_p"
MONTHS_AHEAD = 3  # default of AUDIT_PARTITION_MONTHS_AHEAD
LOCK_TIMEOUT = "10s"  # how long partition DDL may wait for the table before giving up


def supported() -> bool:
    return connection.vendor == "postgresql"


def months_ahead() -> int:
    return getattr(settings, "AUDIT_PARTITION_MONTHS_AHEAD", MONTHS_AHEAD)


def first_of(month: date | datetime) -> date:
    return date(month.year, month.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def bounds(month: date) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in UTC (the partition's range)."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end_month = add_months(month, 1)
    return start, datetime(end_month.year, end_month.month, 1, tzinfo=UTC)


def partition_name(month: date) -> str:
    return f"{PREFIX}{month.year:04d}_{month.month:02d}"


def create_sql(month: date) -> str:
    start, end = bounds(month)
    return (
        f"CREATE TABLE {partition_name(month)} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def guard_sql(partition: str) -> str:
    """The TRUNCATE guard of one partition (the row guard comes from the parent)."""
    return (
        f"CREATE OR REPLACE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {partition} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()"
    )


# Install or remove the TRUNCATE guard on every partition at once (the tests' flush
# removes the guards and puts them back; migration 0006 installs them).
GUARD_PARTITIONS = """
DO $$
DECLARE part regclass;
BEGIN
  FOR part IN SELECT inhrelid::regclass FROM pg_inherits
              WHERE inhparent = 'audit_auditevent'::regclass LOOP
    EXECUTE 'CREATE OR REPLACE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON '
            || part::text || ' FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()';
  END LOOP;
END $$"""
UNGUARD_PARTITIONS = """
DO $$
DECLARE part regclass;
BEGIN
  FOR part IN SELECT inhrelid::regclass FROM pg_inherits
              WHERE inhparent = 'audit_auditevent'::regclass LOOP
    EXECUTE 'DROP TRIGGER IF EXISTS audit_event_no_truncate ON ' || part::text;
  END LOOP;
END $$"""


def is_partitioned(cursor) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass)", [TABLE]
    )
    return cursor.fetchone()[0]


def existing_months(cursor) -> set[date]:
    """The months that have their own partition."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    months = set()
    for (name,) in cursor.fetchall():
        if name.startswith(PREFIX):
            year, month = name[len(PREFIX) :].split("_")
            months.add(date(int(year), int(month), 1))
    return months


@dataclass(frozen=True)
class Created:
    month: date
    name: str
    moved: int  # events moved out of the default partition


def audit_partitions_ensure(
    *, now: datetime | None = None, ahead: int | None = None
) -> list[Created]:
    """Create this month's partition and the next `ahead` months' that are missing.

    Each month is created in its own short transaction.
    """
    if not supported():
        return []
    now = now or timezone.now()
    ahead = months_ahead() if ahead is None else ahead
    this_month = first_of(now.astimezone(UTC))
    wanted = [add_months(this_month, n) for n in range(ahead + 1)]
    with connection.cursor() as cursor:
        have = existing_months(cursor)
    return [partition_create(month) for month in wanted if month not in have]


def partition_create(month: date) -> Created:
    """Create one month's partition; move its events out of the default partition if any.

    The usual case builds the table apart and attaches it, which takes only a
    SHARE UPDATE EXCLUSIVE lock on the event table: writers go on writing into
    this month's partition meanwhile (those writing into the default partition
    wait while it is checked for rows of the new month, and writers moving a
    chain's head wait while the partition's foreign keys are added). When the
    default does hold such rows, the tables' locks are taken for the few
    statements that move them (`_lock_for_moving`): writers wait (they do not
    fail) until it commits.
    """
    name = partition_name(month)
    start, end = bounds(month)
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys of rows this transaction wrote are checked now: PostgreSQL alters
        # no table with checks still pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if month in existing_months(cursor):
            return Created(month, name, 0)
        waiting = _in_default(cursor, start, end)
        if not waiting:
            try:
                with transaction.atomic():
                    _attach(cursor, month)
                    return Created(month, name, 0)
            except DatabaseError:
                # An event of that month reached the default partition meanwhile.
                pass
        _lock_for_moving(cursor)
        waiting = _in_default(cursor, start, end)
        _rotate_default(cursor)
        cursor.execute(create_sql(month))
        cursor.execute(guard_sql(name))
        columns = ", ".join(_columns(cursor))
        cursor.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {DEFAULT}_moving"  # noqa: S608  # nosec B608  (column names from the catalogue)
        )
        cursor.execute(f"DROP TABLE {DEFAULT}_moving")
    return Created(month, name, waiting)


def _in_default(cursor, start: datetime, end: datetime) -> int:
    cursor.execute(
        f"SELECT count(*) FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s",  # noqa: S608  # nosec B608  (fixed names)
        [start, end],
    )
    return cursor.fetchone()[0]


def _attach(cursor, month: date) -> None:
    """Build the month's table apart, then attach it (its range proven by a CHECK first)."""
    name = partition_name(month)
    start, end = bounds(month)
    cursor.execute(
        f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE)"
    )
    cursor.execute(
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK (occurred_at >= "
        f"'{start.isoformat()}' AND occurred_at < '{end.isoformat()}')"
    )
    cursor.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{start.isoformat()}') "
        f"TO ('{end.isoformat()}')"
    )
    cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    cursor.execute(guard_sql(name))


def _lock_for_moving(cursor) -> None:
    """Lock what moving rows between partitions needs, in the order writers take it.

    Creating and detaching a partition adds foreign-key triggers, and the moved
    rows' foreign keys are checked (FOR KEY SHARE on the rows they name), so the
    tables the events refer to (chains, users, practices) are locked against
    writes and row locks first (EXCLUSIVE: plain reads go on), and the event
    table last. An audit writer takes its chain before the event table, so it
    waits for the move instead of deadlocking with it. A transaction that wrote
    an event and then locks a user row while this runs would deadlock with it
    (PostgreSQL ends one of the two): this path runs only when the default
    partition holds rows of the month being created (docs/audit.md).
    """
    cursor.execute(
        "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f'",
        [TABLE],
    )
    # The chains first: once they are held, no audit writer is part-way through.
    referenced = sorted((name for (name,) in cursor.fetchall()), key=lambda n: (n != CHAINS, n))
    for table in referenced:
        cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")


def _rotate_default(cursor) -> None:
    """Set the default partition's rows aside in a detached table and attach an empty default."""
    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT}")
    cursor.execute(f"ALTER TABLE {DEFAULT} RENAME TO {DEFAULT}_moving")
    cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {TABLE} DEFAULT")
    cursor.execute(guard_sql(DEFAULT))


def _columns(cursor) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [TABLE],
    )
    return [row[0] for row in cursor.fetchall()]


def partition_of(month: date) -> str | None:
    """The name of the month's own partition, if it has one."""
    with connection.cursor() as cursor:
        return partition_name(month) if month in existing_months(cursor) else None
