"""Indexes that serve each report filter newest first (docs/audit.md, "Audit Log Report").

On PostgreSQL each index is built with CREATE INDEX CONCURRENTLY: every audited
action inserts into this table, and a plain CREATE INDEX would hold those
inserts, and so the actions, for as long as the build takes. A concurrent build
cannot run inside a transaction, hence `atomic = False`.
"""

from django.db import migrations, models

from ehr.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audit", "0003_chains_per_practice"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(
                fields=["practice", "actor", "occurred_at", "id"], name="audit_practice_actor_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(
                fields=["practice", "account", "occurred_at", "id"],
                name="audit_practice_account_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(
                fields=["practice", "type", "occurred_at", "id"], name="audit_practice_type_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(fields=["type", "occurred_at", "id"], name="audit_type_time_idx"),
        ),
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(
                fields=["practice", "kind", "occurred_at", "id"], name="audit_practice_kind_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(fields=["kind", "occurred_at", "id"], name="audit_kind_time_idx"),
        ),
    ]
