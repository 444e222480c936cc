"""Secrets looked for where an attacker would look: every page, the logs, the database."""

import base64
import itertools
import logging

from django.conf import settings
from django.db import connection
from django.test import Client
from django_otp_webauthn.models import WebAuthnCredential, WebAuthnUserHandle

from accounts.models import AuthenticatorDevice, UserSession
from accounts.roles import Role
from support_pin import services
from tests.factories import PASSWORD, add_stand_in_passkey
from tests.security.test_access_matrix import ANON, MATRIX, ROLES, concrete_url


def key_texts() -> list[str]:
    texts = [settings.SECRET_KEY]
    for ring in (settings.AUDIT_HMAC_KEYS, settings.FIELD_ENCRYPTION_KEYS):
        for key in ring.keys.values():
            texts += [key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("=")]
    return texts


def test_no_page_for_any_role_shows_a_secret(people, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    draws = itertools.cycle([7391, 5826, 3047, 8152, 6703, 9264])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(draws))
    for user in people.values():
        services.support_pin_generate(account=user, acting_user=user, ip=None)
    pins = {f"{n:04d}" for n in (7391, 5826, 3047, 8152, 6703, 9264)}
    otp_secrets = []
    for device in AuthenticatorDevice.objects.all():
        otp_secrets += [device.key, base64.b32encode(device.bin_key).decode()]
    # Passkeys: the credential ids and user handles are never shown to anyone; the public
    # keys are not secrets, but they have no business on a page either.
    for user in people.values():
        WebAuthnUserHandle.get_handle_for_user(user)
        add_stand_in_passkey(user)
    passkey_values = [
        *WebAuthnCredential.objects.values_list("credential_id", flat=True),
        *WebAuthnCredential.objects.values_list("public_key", flat=True),
        *(h.handle for h in WebAuthnUserHandle.objects.all()),
    ]
    assert len(passkey_values) == 3 * len(people)
    for raw in passkey_values:
        raw = bytes(raw)
        otp_secrets += [raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    secrets_ = [PASSWORD, *key_texts(), *otp_secrets]
    cookies = []
    for role in ROLES:
        client = Client()
        if role != ANON:
            client.force_login(people[role])
            cookies.append(client.cookies["sessionid"].value)
        for name in MATRIX:
            response = client.get(concrete_url(name, people))
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode(errors="replace") + str(response.headers)
            for secret in [*secrets_, *cookies]:
                assert secret not in text, (role, name)
            for pin in pins:
                assert f">{pin}<" not in text and f'"{pin}"' not in text, (role, name)
    for secret in [*secrets_, *cookies]:
        assert secret not in caplog.text


def test_session_keys_are_not_in_the_database(people):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": people[Role.PROVIDER.value].username, "password": PASSWORD}
    )
    assert response.status_code == 302
    key = client.cookies["sessionid"].value
    assert UserSession.objects.filter(user=people[Role.PROVIDER.value]).exists()
    assert not UserSession.objects.filter(session_key=key).exists()
    assert "django_session" not in connection.introspection.table_names()  # one session table
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_usersession")
        for row in cursor.fetchall():
            assert key not in " ".join(str(value) for value in row)
    assert client.get("/account/settings/").status_code == 200  # the session still works


def test_a_remotely_ended_session_keeps_no_data(people):
    provider = people[Role.PROVIDER.value]
    client = Client()
    client.post("/accounts/login/", {"username": provider.username, "password": PASSWORD})
    record = UserSession.objects.get(user=provider)
    assert record.session_data
    from accounts.auth_events import session_end

    session_end(account=provider, session_key=record.session_key, acting_user=provider, ip=None)
    record.refresh_from_db()
    assert record.session_data == "" and record.end_reason == "revoked"
    assert client.get("/account/settings/").status_code == 302


def test_authenticator_secrets_are_sealed_in_the_database_and_re_keyed(people, capsys):
    from binascii import hexlify

    from django.core.management import call_command
    from django.test import override_settings

    from ehr.keys import KeyRing

    devices = list(AuthenticatorDevice.objects.all())
    assert devices
    secrets_ = {device.pk: device.bin_key for device in devices}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, key FROM otp_totp_totpdevice")
        rows = cursor.fetchall()
    for pk, stored in rows:
        assert stored.startswith("v1:")
        assert hexlify(secrets_[pk]).decode() not in stored
        assert base64.b32encode(secrets_[pk]).decode() not in stored
    ring = settings.FIELD_ENCRYPTION_KEYS
    new = KeyRing(current_id="n2", keys={"n2": b"n" * 32, **ring.keys})
    with override_settings(FIELD_ENCRYPTION_KEYS=new):
        call_command("rotate_field_keys")
        for device in AuthenticatorDevice.objects.all():
            assert device.key.startswith("v1:n2:") and device.bin_key == secrets_[device.pk]
    assert "authenticator secrets under key n2" in capsys.readouterr().out


def test_every_field_of_a_counted_prompt_is_masked_in_the_attempt_records(people):
    """Axes keeps what was posted with a counted failure; a prompt form posts more than a
    password (new passwords, PINs, codes, a new email address)."""
    from accounts.forms import ChangePasswordForm, IdentityForm, SignInForm, StaffAccountForm
    from support_pin.forms import AppPinForm, PasswordPromptForm

    enrolled = people[Role.COMPLIANCE_OFFICER.value]  # has an authenticator: code fields too
    masked = {"password", *settings.AXES_SENSITIVE_PARAMETERS}
    forms = [
        form(user=enrolled)
        for form in (IdentityForm, ChangePasswordForm, StaffAccountForm, PasswordPromptForm)
    ]
    forms += [AppPinForm(user=enrolled), SignInForm()]
    for form in forms:
        assert set(form.fields) <= masked, (type(form).__name__, set(form.fields) - masked)


def test_a_wrong_password_at_the_password_change_keeps_no_new_password(people):
    from axes.models import AccessAttempt

    client = Client()
    client.force_login(people[Role.PROVIDER.value])
    new = "My-New-Secret-77x"
    response = client.post(
        "/account/password/",
        {"password": "wrong", "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 400
    stored = " ".join(str(value) for value in AccessAttempt.objects.values_list())
    assert new not in stored and "wrong" not in stored


def test_no_table_holds_a_second_factor_in_clear(people):
    """Every row of every table, read back as text: no backup code, no authenticator key."""
    from binascii import hexlify

    from accounts import mfa

    user = people[Role.COMPLIANCE_OFFICER.value]
    codes = mfa.mfa_backup_codes_replace(acting_user=user, ip=None)
    device = AuthenticatorDevice.objects.get(user=user)
    secrets_ = [*codes, hexlify(device.bin_key).decode(), base64.b32encode(device.bin_key).decode()]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608  (names from the database itself)
            text = " ".join(str(value) for row in cursor.fetchall() for value in row)
            for secret in secrets_:
                assert secret not in text and secret.upper() not in text, table
