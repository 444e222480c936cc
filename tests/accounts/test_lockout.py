from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import confirm_identity, make_user

LOGIN = "/accounts/login/"


def attempt(client, password, *, remote="192.0.2.10", xff=None, username="dorothy"):
    extra = {"REMOTE_ADDR": remote}
    if xff:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def fail(client, times, **kwargs):
    """Wrong passwords: answered with the form again, and with the lockout page at the limit."""
    for n in range(1, times + 1):
        status = attempt(client, "wrong-password", **kwargs).status_code
        assert status == (429 if n >= 5 else 200)


def test_five_failures_lock_the_username_for_30_minutes(client, provider, password):
    fail(client, 4)
    response = attempt(client, "wrong-password")
    assert response.status_code == 429
    response = attempt(client, password)
    assert response.status_code == 429
    assert "Sign-in is locked" in response.content.decode()
    assert "30 minutes" in response.content.decode()
    details = list(
        AuditEvent.objects.filter(kind__startswith="security.sign_in")
        .order_by("id")
        .values_list("details", flat=True)
    )
    # The lock is recorded while axes handles the fifth failure, so next to it.
    assert Counter(details) == {
        "Failed sign-in for user dorothy Ludwig": 5,
        "Sign-in locked for user dorothy Ludwig after repeated failures": 1,
        "Sign-in refused for user dorothy Ludwig: sign-in is locked": 1,
    }
    assert details[-1] == "Sign-in refused for user dorothy Ludwig: sign-in is locked"
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert attempt(client, password).status_code == 302


def test_by_username_the_lock_holds_from_every_address(client, provider, password):
    fail(client, 5, remote="192.0.2.10")
    assert attempt(client, password, remote="203.0.113.99").status_code == 429


@pytest.fixture
def by_username_and_ip(settings):
    """Only the username + IP lock: the username-wide one switched off."""
    settings.LOGIN_FAILURE_LIMIT_USERNAME = 0


def test_with_a_higher_username_limit_one_address_locks_only_itself(
    client, provider, password, settings
):
    settings.LOGIN_FAILURE_LIMIT_USERNAME = 8
    fail(client, 5, remote="192.0.2.10")  # the username + IP lock
    assert attempt(client, password, remote="192.0.2.10").status_code == 429
    assert attempt(client, "wrong-password", remote="192.0.2.10").status_code == 429
    # The owner elsewhere still signs in (which resets the count, as axes does).
    assert attempt(client, password, remote="203.0.113.99").status_code == 302
    client.logout()


def test_guessing_spread_over_addresses_locks_the_username_everywhere(
    client, provider, password, settings
):
    settings.LOGIN_FAILURE_LIMIT_USERNAME = 8
    for n in range(8):  # 2 from each of 4 addresses: no pair reaches 5
        status = attempt(client, "wrong-password", remote=f"198.51.100.{n // 2}").status_code
        assert status == (429 if n == 7 else 200)
    assert attempt(client, password, remote="203.0.113.99").status_code == 429
    kinds = list(
        AuditEvent.objects.filter(kind__startswith="security.sign_in")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert Counter(kinds) == {
        "security.sign_in_failed": 8,
        "security.sign_in_locked": 1,
        "security.sign_in_refused_locked": 1,
    }


def test_the_staff_page_shows_either_lock(client, provider, settings, practice_admin):
    from axes.models import AccessAttempt

    def shown_locked() -> bool:
        admin = Client()
        admin.force_login(practice_admin)
        return "Locked" in admin.get("/practice/staff/").content.decode()

    settings.LOGIN_FAILURE_LIMIT_USERNAME = 20
    for n in range(4):
        attempt(client, "wrong-password", remote=f"198.51.100.{n}")
    assert not shown_locked()
    fail(client, 5, remote="192.0.2.10")  # the username + IP lock alone (9 of 20)
    assert shown_locked()

    AccessAttempt.objects.all().delete()
    settings.LOGIN_FAILURE_LIMIT_USERNAME = 6
    for n in range(6):  # the username lock alone: one failure from each address
        attempt(client, "wrong-password", remote=f"203.0.113.{n}")
    assert shown_locked()


def test_by_username_and_ip_other_addresses_still_get_in(
    client, provider, password, by_username_and_ip
):
    fail(client, 5, remote="192.0.2.10")
    assert attempt(client, password, remote="192.0.2.10").status_code == 429
    assert attempt(client, password, remote="203.0.113.99").status_code == 302


def test_a_spoofed_forwarded_for_does_not_buy_fresh_attempts(
    client, provider, password, by_username_and_ip, settings
):
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(5):
        attempt(client, "wrong-password", remote="192.0.2.10", xff=f"10.9.9.{n}")
    assert attempt(client, password, remote="192.0.2.10", xff="10.9.9.200").status_code == 429


def test_one_proxy_does_not_lock_out_everyone_behind_it(
    client, provider, password, by_username_and_ip, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    fail(client, 5, remote="10.0.0.1", xff="198.51.100.1")
    assert attempt(client, password, remote="10.0.0.1", xff="198.51.100.1").status_code == 429
    assert attempt(client, password, remote="10.0.0.1", xff="198.51.100.2").status_code == 302


def test_wrong_passwords_at_the_pin_prompt_count_towards_the_lockout(client, provider, password):
    client.force_login(provider)
    for _ in range(5):
        client.post("/account/pins/support/", {"password": "wrong-password"})
    client.logout()
    assert attempt(client, password).status_code == 429


@pytest.fixture
def practice_admin(practice):
    return make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")


def test_practice_admin_sees_and_unlocks_their_staff(client, provider, password, practice_admin):
    fail(client, 5)
    client.force_login(practice_admin)
    confirm_identity(client)  # unlocking is behind re-authentication
    page = client.get("/practice/staff/").content.decode()
    assert "dorothy" in page and "Locked" in page and "Unlock" in page
    response = client.post(f"/practice/staff/{provider.pk}/unlock/")
    assert response.status_code == 302
    assert "Sign-in unlocked for dorothy Ludwig." in client.get("/practice/staff/").content.decode()
    client.logout()
    assert attempt(client, password).status_code == 302
    event = AuditEvent.objects.get(kind="security.sign_in_unlocked")
    assert event.actor_id == practice_admin.pk and event.account_id == provider.pk


def test_unlocking_is_limited_to_the_admins_own_practice(
    client, provider, other_provider, practice_admin, nurse
):
    client.force_login(practice_admin)
    confirm_identity(client)  # unlocking is behind re-authentication
    assert client.post(f"/practice/staff/{other_provider.pk}/unlock/").status_code == 404
    assert client.post(f"/practice/staff/{practice_admin.pk}/unlock/").status_code == 404
    assert "otherdoc" not in client.get("/practice/staff/").content.decode()
    client.force_login(nurse)
    confirm_identity(client)
    assert client.get("/practice/staff/").status_code == 403
    assert client.post(f"/practice/staff/{provider.pk}/unlock/").status_code == 403


def test_attempt_records_keep_no_pin_or_password(client, provider, password):
    from axes.models import AccessAttempt

    client.force_login(provider)
    client.post("/account/pins/app/", {"password": "Secret-Typo-1", "new_app_pin": "4821"})
    attempt(client, "Another-Secret-2")
    for row in AccessAttempt.objects.values("post_data", "get_data"):
        text = " ".join(row.values())
        assert "4821" not in text and "Secret-Typo-1" not in text and "Another-Secret-2" not in text


def test_superusers_unlock_anyone_from_the_admin(client, provider, other_provider, password):
    fail(client, 5)
    root = make_user(Role.PLATFORM_AUDITOR, username="root")
    type(root).objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    root.refresh_from_db()
    client.force_login(root)
    confirm_identity(client)  # each change in the admin asks first
    response = client.post(
        "/admin/accounts/user/",
        {"action": "unlock_sign_in", "_selected_action": [provider.pk]},
    )
    assert response.status_code == 302
    client.logout()
    assert attempt(client, password).status_code == 302
    assert AuditEvent.objects.filter(kind="security.sign_in_unlocked", actor=root).exists()


def test_a_sign_in_whose_event_cannot_be_written_leaves_the_failed_attempts_and_no_trace(
    client, provider, password, monkeypatch
):
    """What Django and axes do on a sign-in (the last sign-in time; the failed attempts
    cleared, from every address) happens with its event or not at all."""
    from axes.models import AccessAttempt

    from accounts import auth_events
    from audit import kinds

    fail(client, 3, remote="192.0.2.10")
    fail(Client(), 1, remote="203.0.113.7")
    attempts = list(AccessAttempt.objects.values_list("ip_address", "failures_since_start"))
    recorded = auth_events.audit_event_record

    def refused_at_sign_in(*, kind, **kwargs):
        if kind is kinds.SIGNED_IN:
            raise RuntimeError("audit store unavailable")
        return recorded(kind=kind, **kwargs)

    monkeypatch.setattr(auth_events, "audit_event_record", refused_at_sign_in)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        attempt(client, password)
    assert list(AccessAttempt.objects.values_list("ip_address", "failures_since_start")) == attempts
    provider.refresh_from_db()
    assert provider.last_login is None
    assert client.get("/account/settings/").status_code == 302  # not signed in

    monkeypatch.setattr(auth_events, "audit_event_record", recorded)
    assert attempt(client, password).status_code == 302
    provider.refresh_from_db()
    assert provider.last_login is not None and not AccessAttempt.objects.exists()
