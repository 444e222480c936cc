"""Monthly partitions of the audit events (PostgreSQL), and the archive boundary tables.

On PostgreSQL the event table becomes range-partitioned by month on
`occurred_at` (audit/partitions.py): the partitioned table is created beside
the old one, every row is copied into it unchanged (ids, chains, seq, hashes),
the old table is dropped and its indexes, foreign keys and append-only
triggers are created again on the new one; the id sequence goes on from where
it was. A partitioned table's primary key and unique constraints must include
the partition key, so the database's primary key is (id, occurred_at) and the
unique (chain, seq) becomes (chain, seq, occurred_at); Django still treats
`id` as the primary key (docs/audit.md says what still guarantees one event
per chain position). No foreign key points at the event table (the migration
stops if one does). On SQLite the table stays as it is.

The archive tables (AuditArchive, AuditArchiveChain) are append-only too.
"""

import importlib
from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

from audit import partitions

previous_guards = importlib.import_module("audit.migrations.0003_chains_per_practice")

TABLE = "audit_auditevent"
ARCHIVE_TABLES = ["audit_auditarchive", "audit_auditarchivechain"]

SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
        BEGIN SELECT RAISE(ABORT, 'audit archives are append-only: {op} refused'); END"""
    for table in ARCHIVE_TABLES
    for op in ("UPDATE", "DELETE")
]
SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {table}_no_{op}"
    for table in ARCHIVE_TABLES
    for op in ("update", "delete")
]
POSTGRES_INSTALL = [
    """CREATE OR REPLACE FUNCTION audit_archive_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION USING MESSAGE = 'audit archives are append-only: ' || TG_OP || ' refused';
    END $$""",
    *(
        f"""CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE
            ON {table} FOR EACH ROW EXECUTE FUNCTION audit_archive_append_only()"""
        for table in ARCHIVE_TABLES
    ),
    *(
        f"""CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE
            ON {table} FOR EACH STATEMENT EXECUTE FUNCTION audit_archive_append_only()"""
        for table in ARCHIVE_TABLES
    ),
    partitions.GUARD_PARTITIONS,
]
POSTGRES_REMOVE = [
    partitions.UNGUARD_PARTITIONS,
    *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in ARCHIVE_TABLES),
    *(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}" for t in ARCHIVE_TABLES),
]


def statements(vendor: str, *, install: bool) -> list[str]:
    """Every append-only guard of the audit tables (migration 0003's and these)."""
    before = previous_guards.statements(vendor, install=install)
    if vendor == "postgresql":
        return before + (POSTGRES_INSTALL if install else POSTGRES_REMOVE)
    return before + (SQLITE_INSTALL if install else SQLITE_REMOVE)


def install_guards(apps, schema_editor):
    for sql in statements(schema_editor.connection.vendor, install=True):
        schema_editor.execute(sql)


def remove_guards(apps, schema_editor):
    # Only this migration's: 0003's guards stay until 0003 is undone.
    vendor = schema_editor.connection.vendor
    for sql in POSTGRES_REMOVE if vendor == "postgresql" else SQLITE_REMOVE:
        schema_editor.execute(sql)


def _fetch(cursor, sql: str, params=()) -> list[tuple]:
    cursor.execute(sql, params)
    return cursor.fetchall()


def _rebuild(cursor, *, partitioned: bool, months_ahead: int) -> None:
    """Re-create the event table partitioned (or not), copying every row unchanged."""
    referencing = _fetch(
        cursor,
        "SELECT conname, conrelid::regclass::text FROM pg_constraint WHERE confrelid = %s::regclass",
        [TABLE],
    )
    if referencing:
        raise RuntimeError(
            "foreign keys point at the audit event table, which a partitioned table cannot keep: "
            + ", ".join(f"{name} on {table}" for name, table in referencing)
        )
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    foreign_keys = _fetch(
        cursor,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [TABLE],
    )
    indexes = _fetch(
        cursor,
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')) ORDER BY indexname",
        [TABLE, TABLE],
    )
    ((oldest, last_id),) = _fetch(cursor, f"SELECT min(occurred_at), max(id) FROM {TABLE}")  # noqa: S608  # nosec B608
    (sequence_at,) = _fetch(
        cursor, "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id'))", [TABLE]
    )[0]
    next_id = max(last_id or 0, sequence_at or 0) + 1
    (count,) = _fetch(cursor, f"SELECT count(*) FROM {TABLE}")[0]  # noqa: S608  # nosec B608

    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_old")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {TABLE}_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE)" + (" PARTITION BY RANGE (occurred_at)" if partitioned else "")
    )
    if partitioned:
        cursor.execute(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF {TABLE} DEFAULT")
        now = datetime.now(UTC)
        month = partitions.first_of(oldest or now)
        last = partitions.add_months(partitions.first_of(now), months_ahead)
        while month <= last:
            cursor.execute(partitions.create_sql(month))
            month = partitions.add_months(month, 1)
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_old")  # noqa: S608  # nosec B608
    (copied,) = _fetch(cursor, f"SELECT count(*) FROM {TABLE}")[0]  # noqa: S608  # nosec B608
    if copied != count:
        raise RuntimeError(f"copied {copied} audit events of {count}")
    cursor.execute(f"DROP TABLE {TABLE}_old")
    cursor.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
        f"(START WITH {int(next_id)})"
    )
    key = "id, occurred_at" if partitioned else "id"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    unique = "chain_id, seq, occurred_at" if partitioned else "chain_id, seq"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT audit_chain_seq_unique UNIQUE ({unique})")
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for (definition,) in indexes:
        # A partitioned table's index reads `ON ONLY`; on the new table it covers every partition.
        cursor.execute(definition.replace(" ON ONLY ", " ON "))
    for sql in previous_guards.statements("postgresql", install=True):
        cursor.execute(sql)
    cursor.execute(f"ANALYZE {TABLE}")


def partition_events(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite keeps one table
    with schema_editor.connection.cursor() as cursor:
        if not partitions.is_partitioned(cursor):
            _rebuild(cursor, partitioned=True, months_ahead=partitions.months_ahead())


def unpartition_events(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if partitions.is_partitioned(cursor):
            _rebuild(cursor, partitioned=False, months_ahead=0)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_verifications"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditArchive",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "month",
                    models.DateField(
                        help_text="First day of the archived month (UTC).", unique=True
                    ),
                ),
                ("archived_at", models.DateTimeField(help_text="When the partition was dropped.")),
                (
                    "file_name",
                    models.CharField(help_text="Where the file was written.", max_length=500),
                ),
                (
                    "file_sha256",
                    models.CharField(help_text="SHA-256 of the file's bytes.", max_length=64),
                ),
                (
                    "events",
                    models.PositiveBigIntegerField(
                        help_text="Events the file holds and the month held."
                    ),
                ),
                (
                    "evidence_checkpoint",
                    models.BigIntegerField(
                        help_text="The signed checkpoint the file verifies against (its number)."
                    ),
                ),
                (
                    "boundary_checkpoint",
                    models.BigIntegerField(
                        help_text="The checkpoint that signed the chains' new starts after the drop (its number)."
                    ),
                ),
            ],
            options={
                "ordering": ["-month"],
            },
        ),
        migrations.CreateModel(
            name="AuditArchiveChain",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("first_seq", models.BigIntegerField(help_text="seq of the first archived event.")),
                ("last_seq", models.BigIntegerField(help_text="seq of the last archived event.")),
                (
                    "last_hash",
                    models.CharField(
                        help_text="row_hash of the last archived event: the next one links to it.",
                        max_length=64,
                    ),
                ),
                (
                    "last_mac",
                    models.CharField(
                        help_text="Keyed hash of the last archived event.", max_length=64
                    ),
                ),
                (
                    "archive",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="chains",
                        to="audit.auditarchive",
                    ),
                ),
                (
                    "chain",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="audit.auditchain",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("archive", "chain"), name="audit_archive_chain_unique"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("last_seq__gte", models.F("first_seq"))),
                        name="audit_archive_chain_range",
                    ),
                ],
            },
        ),
        migrations.RunPython(partition_events, unpartition_events),
        migrations.RunPython(install_guards, remove_guards),
    ]
