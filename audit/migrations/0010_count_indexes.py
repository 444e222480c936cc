"""The account indexes end with the acting user (the report's count of a username).

The count reads the account's rows that another user acted on, and with the
acting user in the index it reads them from the index alone (`AuditEventFilter.
count_parts`). Each index is replaced under its own name.

On PostgreSQL the event table is partitioned by month, and PostgreSQL builds no
index on a partitioned table concurrently: a plain CREATE INDEX would hold every
audited action's insert for as long as the build takes. So the new index is made
on the parent alone (`ON ONLY`, not yet valid), each partition's is built
concurrently and attached, and once the last is attached the parent's is valid.
Only then is the old index dropped and the new one given its name. The
statements that lock the table for a moment (making the parent's index,
attaching, dropping, renaming) wait at most `LOCK_TIMEOUT` for it, so writers
never queue behind them for longer, and are tried again. A partition created
meanwhile gets the parent's index when it is made.

Run again after a failure, the migration picks up where it stopped: an index
already replaced is left as it is, a partition's index already attached is kept,
and one a failed concurrent build left invalid is built again.
"""

import hashlib
import time

from django.db import OperationalError, migrations, models

from audit import partitions

TABLE = "audit_auditevent"
LOCK_TIMEOUT = "2s"
ATTEMPTS = 30  # of a statement that locks the table for a moment, a second apart


def _briefly(cursor, sql: str) -> None:
    """Run `sql`, which locks the table for a moment, without queueing writers for long."""
    for attempt in range(1, ATTEMPTS + 1):
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            cursor.execute(sql)
            return
        except OperationalError:
            if attempt == ATTEMPTS:
                raise
            time.sleep(1)
        finally:
            cursor.execute("RESET lock_timeout")


def _index_columns(cursor, name: str) -> list[str] | None:
    """The columns of the index `name`, in order, or None if there is none."""
    cursor.execute(
        "SELECT a.attname FROM pg_index x "
        "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
        "WHERE x.indexrelid = to_regclass(%s) ORDER BY k.n",
        [name],
    )
    found = [row[0] for row in cursor.fetchall()]
    return found or None


def _is_valid(cursor, name: str) -> bool:
    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return bool(row and row[0])


def _replace_postgres(schema_editor, model, old: models.Index, new: models.Index) -> None:
    names = [model._meta.get_field(name).column for name in new.fields]
    columns = ", ".join(schema_editor.quote_name(name) for name in names)
    building = f"{new.name}_new"
    with schema_editor.connection.cursor() as cursor:
        if _index_columns(cursor, new.name) == names and _is_valid(cursor, new.name):
            return  # replaced already, by a run that stopped at a later step
        if not partitions.is_partitioned(cursor):
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {building}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY {building} ON {TABLE} ({columns})")
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {old.name}")
            _briefly(cursor, f"ALTER INDEX {building} RENAME TO {new.name}")
            return
        _briefly(cursor, f"CREATE INDEX IF NOT EXISTS {building} ON ONLY {TABLE} ({columns})")
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [TABLE],
        )
        for (partition,) in cursor.fetchall():
            cursor.execute(
                "SELECT 1 FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass AND x.indrelid = %s::regclass",
                [building, partition],
            )
            if cursor.fetchone():
                continue  # attached already: made with the partition, or by a run that stopped
            # Named by its columns too: the index it replaces may carry the same name.
            digest = hashlib.sha256(columns.encode()).hexdigest()[:8]
            own = f"{partition}_{new.name}_{digest}"[:63]
            if _index_columns(cursor, own) is not None and not _is_valid(cursor, own):
                cursor.execute(f"DROP INDEX CONCURRENTLY {own}")  # a failed build's
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {own} ON {partition} ({columns})"
            )
            _briefly(cursor, f"ALTER INDEX {building} ATTACH PARTITION {own}")
        if not _is_valid(cursor, building):
            raise RuntimeError(f"{building} does not cover every partition of {TABLE} yet")
        _briefly(cursor, f"DROP INDEX IF EXISTS {old.name}")
        _briefly(cursor, f"ALTER INDEX {building} RENAME TO {new.name}")


class ReplaceIndex(migrations.operations.base.Operation):
    """Replace the model's index `old` by `new`, of the same name, without holding writes."""

    reversible = True

    def __init__(self, model_name: str, old: models.Index, new: models.Index):
        self.model_name, self.old, self.new = model_name, old, new

    def deconstruct(self):
        return (self.__class__.__name__, [], vars(self).copy())

    def state_forwards(self, app_label, state):
        state.remove_index(app_label, self.model_name, self.old.name)
        state.add_index(app_label, self.model_name, self.new)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._replace(app_label, schema_editor, to_state, self.old, self.new)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._replace(app_label, schema_editor, to_state, self.new, self.old)

    def _replace(self, app_label, schema_editor, state, old, new):
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            _replace_postgres(schema_editor, model, old, new)
        else:
            # One name for both: a run that stopped after this step drops the new one
            # and builds it again.
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(old.name)}")
            schema_editor.add_index(model, new)

    def describe(self):
        return f"Replace index {self.old.name} on {self.model_name}"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audit", "0009_patient_id_index"),
    ]

    operations = [
        ReplaceIndex(
            "auditevent",
            models.Index(fields=["account", "occurred_at"], name="audit_account_time_idx"),
            models.Index(
                fields=["account", "occurred_at", "id", "actor"], name="audit_account_time_idx"
            ),
        ),
        ReplaceIndex(
            "auditevent",
            models.Index(
                fields=["practice", "account", "occurred_at", "id"],
                name="audit_practice_account_idx",
            ),
            models.Index(
                fields=["practice", "account", "occurred_at", "id", "actor"],
                name="audit_practice_account_idx",
            ),
        ),
    ]
