"""Backup codes stored only as keyed digests (accounts.BackupCodeDevice); existing ones too.

Codes already issued keep working: each stored code is replaced by its digest
under the current FIELD_ENCRYPTION_KEYS key, the form the device verifies.
"""

import re

from django.db import migrations

from ehr import crypto

PLAIN = re.compile(r"[a-z2-7]{8}")  # django-otp's random_token(): 8 base32 characters
PURPOSE = "accounts.BackupCodeDevice.token"  # = accounts.models.BACKUP_CODE_PURPOSE


def digest_existing_codes(apps, schema_editor):
    StaticToken = apps.get_model("otp_static", "StaticToken")
    for token in StaticToken.objects.all():
        if PLAIN.fullmatch(token.token):
            token.token = crypto.keyed_digests(token.token, purpose=PURPOSE)[0]
            token.save(update_fields=["token"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_username_case_insensitive_unique"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [
        migrations.CreateModel(
            name="BackupCodeDevice",
            fields=[],
            options={
                "verbose_name": "backup codes",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("otp_static.staticdevice",),
        ),
        migrations.RunPython(digest_existing_codes, migrations.RunPython.noop),
    ]
