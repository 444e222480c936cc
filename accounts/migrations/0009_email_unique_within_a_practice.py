"""Email addresses unique within a practice, so no form tells whether one is used at another."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_ascii_usernames"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="user",
            name="accounts_user_email_ci_unique",
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("email"),
                models.F("practice"),
                condition=models.Q(("email", ""), _negated=True),
                name="accounts_user_email_practice_unique",
                violation_error_message="Another account of this practice already uses this email address.",
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("email"),
                condition=models.Q(
                    models.Q(("email", ""), _negated=True), ("practice__isnull", True)
                ),
                name="accounts_user_email_platform_unique",
                violation_error_message="Another platform account already uses this email address.",
            ),
        ),
    ]
