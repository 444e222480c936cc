"""Support PIN validation blocked after repeated locks until the owner makes a new PIN."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("support_pin", "0003_pin_prompts_use_the_sign_in_lock"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountpins",
            name="validation_blocked_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Set when locks in a row reached the limit: validation refuses every PIN until the owner generates a new one (or a practice admin unblocks it).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="accountpins",
            name="validation_locks_in_a_row",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="Validation locks since the last successful validation or the owner's new PIN.",
            ),
        ),
    ]
