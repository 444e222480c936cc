import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.test import override_settings

from accounts.roles import Role
from audit.models import AuditEvent
from ehr import crypto
from ehr.keys import KeyRing
from support_pin.models import AccountPins
from support_pin.services import field_keys_rotate_batch
from tests.factories import make_user
from tests.support_pin.helpers import current_pin

OLD = ("old", b"o" * 32)
NEW = ("new", b"n" * 32)


def ring(*entries):
    return KeyRing(current_id=entries[0][0], keys=dict(entries))


@pytest.fixture
def accounts_under_old_key(practice):
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(OLD)):
        users = [make_user(Role.NURSE, practice=practice) for _ in range(7)]
        pins = {u.pk: (current_pin(u), current_pin(u, "app_pin")) for u in users}
    return pins


def test_rotation_re_encrypts_everything_resumably_and_is_audited(accounts_under_old_key, capsys):
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(NEW, OLD)):
        first = field_keys_rotate_batch(batch_size=3)  # as if stopped after one batch
        assert first.done == 3 and first.remaining >= 4
        call_command("rotate_field_keys", batch_size=2)
        out = capsys.readouterr().out
        assert "Done:" in out and "0 to go" in out
        for row in AccountPins.objects.filter(user_id__in=accounts_under_old_key):
            assert crypto.key_id_of(row.support_pin) == crypto.key_id_of(row.app_pin) == "new"
    # The old key can go: every value decrypts with the new one alone, unchanged.
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(NEW)):
        for user_id, (support, app) in accounts_under_old_key.items():
            user = AccountPins.objects.get(user_id=user_id).user
            assert (current_pin(user), current_pin(user, "app_pin")) == (support, app)
        call_command("rotate_field_keys")
    # Every batch is in the log, the one stopped after it too; a run with nothing to do
    # writes nothing.
    events = AuditEvent.objects.filter(kind="security.field_keys_rotated").order_by("id")
    pins = [e.data["count"] for e in events if e.data["what"] == "accounts' PINs"]
    assert pins[0] == 3 and sum(pins) == AccountPins.objects.count()
    assert all("values now under key new" in e.details for e in events)


def test_a_batch_whose_event_cannot_be_written_is_not_re_encrypted(
    accounts_under_old_key, monkeypatch
):
    from support_pin import services

    def refused(**kwargs):
        raise DatabaseError("could not extend file")

    monkeypatch.setattr(services, "audit_event_record", refused)
    with override_settings(FIELD_ENCRYPTION_KEYS=ring(NEW, OLD)), pytest.raises(DatabaseError):
        field_keys_rotate_batch(batch_size=3)
    assert all(
        crypto.key_id_of(row.support_pin) == "old"
        for row in AccountPins.objects.filter(user_id__in=accounts_under_old_key)
    )
