"""Sessions signed in before the one-session-model migration stay signed in after it."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts.models import UserSession

BEFORE = [("accounts", "0004_authenticator_device")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_live_sessions_move_over_and_the_old_tables_go(provider):
    # Every app's latest migration: going back also unapplies what depends on accounts.
    leaf = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = migrate(BEFORE)
    # The old store: Django's table, keyed by the same hash the session list kept.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, "
            "session_data text NOT NULL, expire_date timestamp with time zone NOT NULL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, "
            "session_data text NOT NULL, expire_date datetime NOT NULL)"
        )
    Legacy = old.get_model("accounts", "UserSession")
    now = timezone.now()
    data = SessionBase().encode({"_auth_user_id": str(provider.pk), "last_activity": 1.0})
    rows = {
        "a" * 40: (None, now + timedelta(hours=3)),  # live: moves
        "d" * 40: (None, now + timedelta(hours=11)),  # live, signed in 11 hours ago: capped
        "b" * 40: (now, now + timedelta(hours=3)),  # ended in the list: does not
        "c" * 40: (None, now - timedelta(minutes=1)),  # expired in the store: does not
    }
    for key, (ended, expires) in rows.items():
        Legacy.objects.create(
            user_id=provider.pk,
            key_hash=key,
            ip="192.0.2.4",
            user_agent="Firefox",
            last_seen_at=now,
            ended_at=ended,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_session VALUES (%s, %s, %s)",
                [key, data, connection.ops.adapt_datetimefield_value(expires)],
            )
    Legacy.objects.filter(key_hash="d" * 40).update(created_at=now - timedelta(hours=11))
    migrate(leaf)
    capped = UserSession.objects.get(session_key="d" * 40)
    assert abs(capped.expire_date - (now + timedelta(hours=1))) < timedelta(seconds=1)
    moved = UserSession.objects.get(session_key="a" * 40)
    assert moved.user_id == provider.pk
    assert moved.session_data == data and moved.ip == "192.0.2.4"
    assert abs(moved.expire_date - (now + timedelta(hours=3))) < timedelta(seconds=1)
    assert "django_session" not in connection.introspection.table_names()
