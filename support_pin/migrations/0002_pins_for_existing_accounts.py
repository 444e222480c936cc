"""Give every account created before PINs existed its Support PIN and App Unlock PIN."""

import secrets

from django.db import migrations
from django.utils import timezone


def create_missing(apps, schema_editor):
    from ehr import crypto  # encryption needs the configured key ring, not historical models

    User = apps.get_model("accounts", "User")
    AccountPins = apps.get_model("support_pin", "AccountPins")
    for user_id in User.objects.filter(pins__isnull=True).values_list("pk", flat=True):
        values = {}
        for field in ("support_pin", "app_pin"):
            aad = crypto.associated_data(
                model="support_pin.AccountPins", field=field, owner_pk=user_id
            )
            values[field] = crypto.encrypt(f"{secrets.randbelow(10_000):04d}", aad=aad)
        AccountPins.objects.create(user_id=user_id, support_pin_changed_at=timezone.now(), **values)


class Migration(migrations.Migration):
    dependencies = [("support_pin", "0001_initial"), ("accounts", "0002_roles_and_specialties")]

    operations = [migrations.RunPython(create_missing, migrations.RunPython.noop)]
