"""The account indexes end with the acting user (the report's count of a username).

The count reads the account's rows that another user acted on, and with the
acting user in the index it reads them from the index alone (`AuditEventFilter.
count_parts`). Each index is replaced under its own name.

On PostgreSQL the event table is partitioned by month, and PostgreSQL builds no
index on a partitioned table concurrently: a plain CREATE INDEX would hold every
audited action's insert for as long as the build takes. So the new index is made
on the parent alone (`ON ONLY`, not yet valid), each partition's is built
concurrently and attached, and once the last is attached the parent's is valid.
Only then is the old index dropped (a short lock, no scan) and the new one given
its name. A partition created meanwhile gets the parent's index when it is made.
Run again after a failure, the migration picks up where it stopped: an index a
failed concurrent build left invalid is built again.
"""

import hashlib

from django.db import migrations, models

from audit import partitions

TABLE = "audit_auditevent"


def _partitioned(cursor) -> bool:
    return partitions.is_partitioned(cursor)


def _columns(model, index: models.Index, quote) -> str:
    return ", ".join(quote(model._meta.get_field(name).column) for name in index.fields)


def _replace_postgres(schema_editor, model, old: models.Index, new: models.Index) -> None:
    quote = schema_editor.quote_name
    columns = _columns(model, new, quote)
    building = f"{new.name}_new"
    with schema_editor.connection.cursor() as cursor:
        if not _partitioned(cursor):
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {building}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY {building} ON {TABLE} ({columns})")
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {old.name}")
            cursor.execute(f"ALTER INDEX {building} RENAME TO {new.name}")
            return
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {building} ON ONLY {TABLE} ({columns})")
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
            cursor.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [own]
            )
            left = cursor.fetchone()
            if left and not left[0]:
                cursor.execute(f"DROP INDEX CONCURRENTLY {own}")
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {own} ON {partition} ({columns})"
            )
            cursor.execute(f"ALTER INDEX {building} ATTACH PARTITION {own}")
        cursor.execute(f"DROP INDEX IF EXISTS {old.name}")
        cursor.execute(f"ALTER INDEX {building} RENAME TO {new.name}")


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
            schema_editor.remove_index(model, old)
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
