"""A patient id across practices: a platform auditor's patient filter looks it up.

Built concurrently on PostgreSQL: every event with a patient writes this table.
"""

from django.db import migrations, models

from ehr.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audit", "0008_patient_unique_without_practice"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="auditedpatient",
            index=models.Index(fields=["patient_id"], name="audit_patient_id_idx"),
        ),
    ]
