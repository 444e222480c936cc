import time

import pytest
import time_machine
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken

from accounts.models import AuthenticatorDevice, BackupCodeDevice
from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import PASSWORD, add_stand_in_passkey, make_user, totp_code

LOGIN = "/accounts/login/"
MFA = "/accounts/login/mfa/"
SECURITY = "/account/security/"
START = "/account/security/mfa/start/"
CONFIRM = "/account/security/mfa/confirm/"
BACKUP_CODES = "/account/security/mfa/backup-codes/"
REMOVE = "/account/security/mfa/remove/"


def code_for(device) -> str:
    return f"{totp(device.bin_key, t0=0, step=30, digits=6, drift=0):06d}"


@pytest.fixture
def clock():
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


def enrol(client, user) -> list[str]:
    """Set up the authenticator from the Security tab; return the backup codes shown."""
    client.force_login(user)
    assert client.post(START, {"password": PASSWORD})["Location"] == SECURITY
    device = AuthenticatorDevice.objects.get(user=user, confirmed=False)
    response = client.post(CONFIRM, {"code": code_for(device)})
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    return response.context["backup_codes"]


def details() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("details", flat=True))


def test_enrolment_shows_a_qr_code_and_the_secret_and_needs_a_valid_code(client, provider):
    client.force_login(provider)
    page = client.post(START, {"password": PASSWORD}, follow=True).content.decode()
    assert "<svg" in page and "Key:" in page
    device = AuthenticatorDevice.objects.get(user=provider, confirmed=False)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = client.post(CONFIRM, {"code": wrong})
    assert response.status_code == 400
    assert not AuthenticatorDevice.objects.filter(user=provider, confirmed=True).exists()


def test_enrolment_gives_ten_single_use_backup_codes(client, provider):
    codes = enrol(client, provider)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert StaticToken.objects.filter(device__user=provider).count() == 10
    assert "Two-factor authentication turned on for user dorothy Ludwig" in details()


def test_sign_in_asks_for_the_code_after_the_password(client, provider, password, clock):
    enrol(client, provider)
    client.logout()
    clock.shift(31)  # a fresh time step: the enrolment code cannot be replayed
    response = client.post(LOGIN, {"username": "dorothy", "password": password})
    assert response["Location"] == MFA
    assert "_auth_user_id" not in client.session  # not signed in before the code
    assert client.get("/account/settings/").status_code == 302
    device = AuthenticatorDevice.objects.get(user=provider)
    response = client.post(MFA, {"method": "app", "code": code_for(device)})
    assert response.status_code == 302
    assert client.get("/account/settings/").status_code == 200


def test_a_used_code_cannot_be_replayed(client, provider, password, clock):
    enrol(client, provider)
    device = AuthenticatorDevice.objects.get(user=provider)
    clock.shift(31)
    code = code_for(device)
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    assert client.post(MFA, {"method": "app", "code": code}).status_code == 302
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    response = client.post(MFA, {"method": "app", "code": code})
    assert response.status_code in (400, 429)
    assert "_auth_user_id" not in client.session


def test_wrong_codes_are_throttled_and_the_user_is_told(client, provider, password, clock):
    enrol(client, provider)
    client.logout()
    clock.shift(31)
    client.post(LOGIN, {"username": "dorothy", "password": password})
    device = AuthenticatorDevice.objects.get(user=provider)
    wrong = f"{(int(code_for(device)) + 7) % 1_000_000:06d}"
    first = client.post(MFA, {"method": "app", "code": wrong})
    assert first.status_code == 400 and "That code is not right." in first.content.decode()
    response = client.post(MFA, {"method": "app", "code": code_for(device)})
    assert response.status_code == 429
    assert "Too many wrong codes. Try again in" in response.content.decode()
    assert "Wrong two-factor code for user dorothy Ludwig" in details()


def test_backup_codes_work_once_even_while_app_codes_are_throttled(client, provider, password):
    codes = enrol(client, provider)
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    client.post(MFA, {"method": "app", "code": "000000"})
    client.post(MFA, {"method": "app", "code": "000001"})
    assert client.post(MFA, {"method": "backup", "code": codes[0].upper()}).status_code == 302
    assert "Backup code used by user dorothy Ludwig" in details()
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    assert client.post(MFA, {"method": "backup", "code": codes[0]}).status_code in (400, 429)


@pytest.mark.parametrize(
    "code", ["12345", "1234567", "abcdef", "\\u0661\\u0662\\u0663\\u0664\\u0665\\u0666"]
)
def test_malformed_codes_are_form_errors_not_guesses(client, provider, password, code):
    enrol(client, provider)
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    response = client.post(MFA, {"method": "app", "code": code.encode().decode("unicode_escape")})
    assert "Enter the 6 digits your authenticator app shows." in response.content.decode()
    assert AuthenticatorDevice.objects.get(user=provider).throttling_failure_count == 0


def test_the_code_step_expires(client, provider, password, clock):
    enrol(client, provider)
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    clock.shift(301)
    response = client.post(MFA, {"method": "app", "code": "123456"})
    assert response["Location"] == LOGIN


def test_a_code_step_begun_before_the_password_changed_is_void(client, provider, password, clock):
    """Whoever typed the old password cannot finish with a phished code once it changed."""
    from django.test import Client

    from accounts.services import user_password_change

    enrol(client, provider)
    client.logout()
    client.post(LOGIN, {"username": "dorothy", "password": password})
    user_password_change(
        account=provider, acting_user=provider, new_password="A-new-Pass-2031!", ip=None
    )
    device = AuthenticatorDevice.objects.get(user=provider)
    clock.shift(30)
    response = client.post(MFA, {"method": "app", "code": code_for(device)})
    assert response["Location"] == LOGIN
    assert client.get(SECURITY).status_code == 302  # not signed in
    # The new password, and the same kind of code, still sign in.
    fresh = Client()
    fresh.post(LOGIN, {"username": "dorothy", "password": "A-new-Pass-2031!"})
    clock.shift(30)
    assert fresh.post(MFA, {"method": "app", "code": code_for(device)})["Location"] == "/"


def test_removing_mfa_needs_the_password_and_a_current_code(client, provider, password, clock):
    enrol(client, provider)
    device = AuthenticatorDevice.objects.get(user=provider)
    clock.shift(31)
    response = client.post(REMOVE, {"password": "wrong", "method": "app", "code": code_for(device)})
    assert (
        response.status_code == 400 and AuthenticatorDevice.objects.filter(user=provider).exists()
    )
    response = client.post(REMOVE, {"password": password, "method": "app", "code": "000000"})
    assert (
        response.status_code == 400 and AuthenticatorDevice.objects.filter(user=provider).exists()
    )
    clock.shift(31)
    response = client.post(
        REMOVE, {"password": password, "method": "app", "code": code_for(device)}
    )
    assert response.status_code == 302
    assert not AuthenticatorDevice.objects.filter(user=provider).exists()
    assert "Two-factor authentication turned off for user dorothy Ludwig" in details()


@pytest.mark.parametrize(
    "role",
    [Role.SUPPORT_AGENT, Role.COMPLIANCE_OFFICER, Role.PRACTICE_ADMIN, Role.PLATFORM_AUDITOR],
)
def test_roles_that_require_mfa_must_enrol_before_anything_else(client, practice, role):
    practice_or_none = None if role in (Role.SUPPORT_AGENT, Role.PLATFORM_AUDITOR) else practice
    user = make_user(role, practice=practice_or_none, mfa=False)
    client.force_login(user)
    for url in ("/audit/", "/support/validate/", "/account/staff/", "/practice/staff/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == SECURITY, url
    page = client.get(SECURITY).content.decode()
    assert "Your role requires two-factor authentication." in page
    enrol(client, user)
    # An authenticator app is not enough for these roles: a passkey too (with no grace).
    assert client.get("/account/staff/")["Location"] == SECURITY
    add_stand_in_passkey(user)
    client.force_login(user)  # signed in again, with the passkey
    assert client.get("/account/staff/").status_code == 200


def test_mfa_can_be_required_for_everyone(client, provider, settings):
    settings.MFA_REQUIRED_FOR_ALL = True
    client.force_login(provider)
    assert client.get("/account/settings/")["Location"] == SECURITY


def test_a_session_from_before_enrolment_elsewhere_must_sign_in_again(client, provider):
    from django.test import Client

    other = Client()
    other.force_login(provider)
    enrol(client, provider)
    response = other.get("/account/settings/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_totp_code_helper_matches_the_device(provider):
    user = make_user(Role.NURSE, practice=provider.practice, mfa=True)
    assert len(totp_code(user)) == 6


def test_setting_up_an_authenticator_asks_for_the_password_at_that_moment(client, provider):
    client.force_login(provider)
    response = client.post(START, {"password": "not-mine"})
    assert (
        response.status_code == 400 and "The password is not correct." in response.content.decode()
    )
    assert not AuthenticatorDevice.objects.filter(user=provider).exists()
    assert "Two-factor change refused for user dorothy Ludwig: wrong password" in details()
    assert client.post(START, {"password": PASSWORD}).status_code == 302
    assert AuthenticatorDevice.objects.filter(user=provider, confirmed=False).exists()


def test_new_backup_codes_need_the_password_and_a_code_and_replace_the_old(client, provider, clock):
    old = enrol(client, provider)
    device = AuthenticatorDevice.objects.get(user=provider)
    clock.shift(31)
    response = client.post(BACKUP_CODES, {"password": PASSWORD, "method": "app", "code": "000000"})
    assert response.status_code == 400 and "backup_codes" not in response.context
    clock.shift(31)
    response = client.post(
        BACKUP_CODES, {"password": PASSWORD, "method": "app", "code": code_for(device)}
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = response.context["backup_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    tokens = set(StaticToken.objects.filter(device__user=provider).values_list("token", flat=True))
    assert tokens == {BackupCodeDevice.stored_form(code) for code in new}
    assert "New backup codes made for user dorothy Ludwig" in details()


def test_roles_that_require_mfa_cannot_turn_it_off(client, practice):
    user = make_user(Role.COMPLIANCE_OFFICER, practice=practice)
    client.force_login(user)
    response = client.post(REMOVE, {"password": PASSWORD, "method": "app", "code": totp_code(user)})
    assert response.status_code == 404
    assert AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()


def test_a_pending_authenticator_is_shown_and_accepted_only_where_it_was_started(
    client, provider, clock
):
    """A session that did not just give the password cannot take over the second factor."""
    from django.test import Client

    client.force_login(provider)
    assert client.post(START, {"password": PASSWORD}).status_code == 302
    device = AuthenticatorDevice.objects.get(user=provider, confirmed=False)
    other = Client()  # the same account, another session (or one whose window has passed)
    other.force_login(provider)
    assert "Key:" not in other.get(SECURITY).content.decode()
    response = other.post(CONFIRM, {"code": code_for(device)})
    assert response["Location"].startswith("/account/confirm/?action=")  # asked to confirm
    response = other.post(response["Location"], {"password": PASSWORD})
    assert response["Location"] == SECURITY  # confirmed, but it never started one
    assert not AuthenticatorDevice.objects.filter(user=provider, confirmed=True).exists()
    clock.shift(6 * 60)  # the starting session's confirmation is no longer recent
    assert "Key:" not in client.get(SECURITY).content.decode()
    client.post(CONFIRM, {"code": code_for(device)})
    assert not AuthenticatorDevice.objects.filter(user=provider, confirmed=True).exists()


def test_turning_two_factor_on_signs_out_the_other_sessions(client, provider):
    from django.test import Client

    other = Client()
    other.post(LOGIN, {"username": "dorothy", "password": PASSWORD})
    enrol(client, provider)
    response = other.get("/account/settings/", follow=True)
    assert response.redirect_chain[0][0].startswith(LOGIN)
    assert (
        "This session was signed out remotely: from another of your sessions, or by an administrator."
        in response.content.decode()
    )


def test_backup_codes_are_stored_only_as_keyed_digests(client, provider, settings):
    from django.db import connection

    from accounts.models import BackupCodeDevice
    from ehr.keys import KeyRing

    codes = enrol(client, provider)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM otp_static_statictoken")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 10 and not set(stored) & set(codes)
    assert not any(code in token or code.upper() in token for code in codes for token in stored)
    # A code stored under the current key still works after a new key becomes current.
    ring = settings.FIELD_ENCRYPTION_KEYS
    settings.FIELD_ENCRYPTION_KEYS = KeyRing(current_id="k2", keys={"k2": b"k" * 32, **ring.keys})
    device = BackupCodeDevice.objects.get(user=provider)
    assert device.verify_token(codes[0]) and not device.verify_token(codes[0])
    # Without the key it was stored under, it does not.
    settings.FIELD_ENCRYPTION_KEYS = KeyRing(current_id="k2", keys={"k2": b"k" * 32})
    device.throttle_reset()
    assert not device.verify_token(codes[1])


def test_codes_issued_before_they_were_digested_keep_working(provider):
    import importlib

    from django.apps import apps
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    from accounts.models import BackupCodeDevice

    old = StaticDevice.objects.create(user=provider, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=old, token="abcdefgh")  # as django-otp stored them
    migration = importlib.import_module("accounts.migrations.0007_backup_codes_as_digests")
    migration.digest_existing_codes(apps, None)
    assert StaticToken.objects.get().token != "abcdefgh"
    assert BackupCodeDevice.objects.get(pk=old.pk).verify_token("abcdefgh")


def test_the_session_list_shows_this_session_right_after_turning_two_factor_on(provider):
    from django.test import Client

    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36")
    client.post(LOGIN, {"username": "dorothy", "password": PASSWORD})
    client.post(START, {"password": PASSWORD})
    device = AuthenticatorDevice.objects.get(user=provider, confirmed=False)
    for response in (client.post(CONFIRM, {"code": code_for(device)}), client.get(SECURITY)):
        page = response.content.decode()
        sessions = page[page.index('id="sessions-title"') :]
        assert "Chrome on Windows" in sessions and "This session" in sessions
