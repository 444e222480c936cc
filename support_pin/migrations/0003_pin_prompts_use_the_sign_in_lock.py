"""PIN prompts count towards the sign-in lock; their own counters go."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("support_pin", "0002_pins_for_existing_accounts"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="accountpins",
            name="failed_reveals",
        ),
        migrations.RemoveField(
            model_name="accountpins",
            name="reveal_locked_until",
        ),
    ]
