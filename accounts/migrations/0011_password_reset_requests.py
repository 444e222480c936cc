"""Password reset requests, kept for an hour to limit them per address and per client."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_practice_country"),
    ]

    operations = [
        migrations.CreateModel(
            name="PasswordResetRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "address_digest",
                    models.CharField(
                        help_text="Keyed digest of the typed email address, case-folded.",
                        max_length=16,
                    ),
                ),
                (
                    "client",
                    models.CharField(
                        blank=True,
                        help_text="The client's IPv4 address, or its IPv6 /64 network; empty when unknown.",
                        max_length=64,
                    ),
                ),
                (
                    "requested_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, help_text="When it was requested."
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["address_digest", "requested_at"], name="accounts_reset_addr_idx"
                    ),
                    models.Index(
                        fields=["client", "requested_at"], name="accounts_reset_client_idx"
                    ),
                    models.Index(fields=["requested_at"], name="accounts_reset_time_idx"),
                ],
            },
        ),
    ]
