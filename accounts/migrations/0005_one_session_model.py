"""One session model: Django's session store and the session list become accounts.UserSession.

Live sessions move over with their data, so nobody is signed out: the old
store already kept each session under the same SHA-256 prefix of its key that
the session list kept, so a list entry and its stored session are joined on
that hash. The old tables are then dropped.
"""

from datetime import UTC, datetime, timedelta

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_live_sessions(apps, schema_editor):
    connection = schema_editor.connection
    if "django_session" not in connection.introspection.table_names():
        return
    Legacy = apps.get_model("accounts", "LegacyUserSession")
    UserSession = apps.get_model("accounts", "UserSession")
    now = django.utils.timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT session_key, session_data, expire_date FROM django_session "
            "WHERE expire_date > %s",
            [connection.ops.adapt_datetimefield_value(now)],
        )
        stored = {key: (data, expires) for key, data, expires in cursor.fetchall()}
    rows = []
    for old in Legacy.objects.filter(ended_at__isnull=True):
        if old.key_hash not in stored:
            continue
        data, expires = stored[old.key_hash]
        if isinstance(expires, str):  # SQLite hands back text, in UTC
            expires = datetime.fromisoformat(expires)
        if django.utils.timezone.is_naive(expires):
            expires = expires.replace(tzinfo=UTC)
        # The old store slid its expiry with activity; the cap counts from sign-in.
        expires = min(expires, old.created_at + timedelta(seconds=settings.SESSION_COOKIE_AGE))
        rows.append(
            UserSession(
                session_key=old.key_hash,
                session_data=data,
                expire_date=expires,
                user_id=old.user_id,
                ip=old.ip,
                user_agent=old.user_agent,
                created_at=old.created_at,
                last_seen_at=old.last_seen_at,
            )
        )
    UserSession.objects.bulk_create(rows)


def drop_django_session(apps, schema_editor):
    if "django_session" in schema_editor.connection.introspection.table_names():
        schema_editor.execute("DROP TABLE django_session")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_authenticator_device"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="usersession", name="accounts_session_user_idx"),
        migrations.RenameModel("UserSession", "LegacyUserSession"),
        migrations.CreateModel(
            name="UserSession",
            fields=[
                (
                    "session_key",
                    models.CharField(
                        max_length=40, primary_key=True, serialize=False, verbose_name="session key"
                    ),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                (
                    "ip",
                    models.GenericIPAddressField(
                        blank=True, help_text="Client IP at sign-in.", null=True
                    ),
                ),
                (
                    "user_agent",
                    models.CharField(blank=True, help_text="Browser at sign-in.", max_length=256),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="When the session began (for a signed-in one: sign-in).",
                    ),
                ),
                (
                    "last_seen_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="When the session was last saved by a request.",
                    ),
                ),
                (
                    "ended_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When it was ended from elsewhere; it no longer loads.",
                        null=True,
                    ),
                ),
                (
                    "end_reason",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("signed_out", "Signed out"),
                            ("idle", "Signed out after inactivity"),
                            ("revoked", "Signed out remotely"),
                            ("password_changed", "Password changed"),
                            ("deactivated", "Account deactivated"),
                            ("session_cap", "Reached the session time limit"),
                        ],
                        help_text="Why it ended.",
                        max_length=20,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        help_text="Who signed in with this session; empty before sign-in.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sessions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["user", "ended_at"], name="accounts_session_user_idx")
                ],
            },
        ),
        migrations.RunPython(move_live_sessions, migrations.RunPython.noop),
        migrations.DeleteModel(name="LegacyUserSession"),
        migrations.RunPython(drop_django_session, migrations.RunPython.noop),
    ]
