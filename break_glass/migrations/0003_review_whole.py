# A separate migration from the data update before it: on PostgreSQL, altering a table
# in the transaction that just updated its rows can fail on pending trigger events.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("break_glass", "0002_review_outcome_and_note"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="breakglassgrant",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("review_note", ""),
                        ("review_outcome", ""),
                        ("reviewed_at__isnull", True),
                        ("reviewed_by__isnull", True),
                    ),
                    models.Q(
                        ("reviewed_at__isnull", False),
                        ("reviewed_by__isnull", False),
                        models.Q(("review_outcome", ""), _negated=True),
                        models.Q(("review_note", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="break_glass_review_whole",
                violation_error_message="A review records who, when, an outcome and a note.",
            ),
        ),
    ]
