"""Passkeys and security keys: added, used, refused, removed, required; through the real
views and django-otp-webauthn's verification, with a software authenticator."""

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential, WebAuthnUserHandle

from accounts import mfa, passkeys
from accounts.models import User, UserSession
from accounts.roles import Role
from audit import kinds
from audit.models import AuditEvent
from tests.accounts.soft_authenticator import SoftAuthenticator, b64url
from tests.factories import (
    PASSWORD,
    add_stand_in_passkey,
    confirm_identity,
    make_user,
    totp_code,
)

SECURITY = "/account/security/"
ADD = "/account/security/passkeys/add/"
REG_BEGIN = reverse("otp_webauthn:credential-registration-begin")
REG_COMPLETE = reverse("otp_webauthn:credential-registration-complete")
AUTH_BEGIN = reverse("otp_webauthn:credential-authentication-begin")
AUTH_COMPLETE = reverse("otp_webauthn:credential-authentication-complete")
PIN_VIEW = "/account/pins/support/"


@pytest.fixture(autouse=True)
def relying_party_host(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]


def at_origin() -> Client:
    """A browser at the relying party's origin (http://localhost), where passkeys work."""
    return Client(SERVER_NAME="localhost")


@pytest.fixture
def client():
    return at_origin()


@pytest.fixture
def clock():
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def no_throttle(settings):
    settings.OTP_WEBAUTHN_THROTTLE_FACTOR = 0


def post_json(client, url, data=None):
    return client.post(url, data=json.dumps(data or {}), content_type="application/json")


def add_passkey(client, authenticator: SoftAuthenticator, name: str = "Work laptop"):
    """Add a passkey from the Security tab, as its page and the library's script do."""
    confirm_identity(client)
    assert client.post(ADD, {"name": name})["Location"] == SECURITY
    options = post_json(client, REG_BEGIN)
    assert options.status_code == 200, options.content
    return post_json(client, REG_COMPLETE, authenticator.create(options.json()))


def password_step(user: User) -> Client:
    client = at_origin()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response["Location"] == "/accounts/login/mfa/"
    return client


def use_passkey(client, authenticator: SoftAuthenticator, **kwargs):
    options = post_json(client, AUTH_BEGIN)
    if options.status_code != 200:
        return options
    return post_json(client, AUTH_COMPLETE, authenticator.get(options.json(), **kwargs))


def kinds_of(account: User) -> list[str]:
    return list(
        AuditEvent.objects.filter(account=account).order_by("id").values_list("kind", flat=True)
    )


@pytest.fixture
def keyed(provider):
    """dorothy with a passkey added through the Security tab, and its authenticator."""
    authenticator = SoftAuthenticator()
    client = at_origin()
    client.force_login(provider)
    assert add_passkey(client, authenticator).status_code == 200
    return authenticator


def test_add_a_passkey_then_sign_in_with_it(client, provider):
    authenticator = SoftAuthenticator()
    client.force_login(provider)
    response = add_passkey(client, authenticator, name="  Work   laptop ")
    assert response.status_code == 200, response.content
    key = WebAuthnCredential.objects.get(user=provider)
    assert key.name == "Work laptop" and key.last_used_at is None
    page = client.get(SECURITY).content.decode()
    assert "Work laptop" in page and "Never" in page
    # What identifies the credential and the user to the authenticator is never shown.
    handle = WebAuthnUserHandle.objects.get(user=provider).handle
    for secret in (
        b64url(key.credential_id),
        key.credential_id.hex(),
        handle.hex(),
        b64url(handle),
    ):
        assert secret not in page
    assert kinds.PASSKEY_ADDED.code in kinds_of(provider)
    # The next sign-in asks for the passkey after the password, and nothing else is needed.
    other = password_step(provider)
    page = other.get("/accounts/login/mfa/").content.decode()
    assert "Use your passkey" in page and "passkey-verification-button" in page
    response = use_passkey(other, authenticator)
    assert response.status_code == 200, response.content
    assert response.json()["redirect_url"] == "/"
    assert other.get("/account/settings/").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    events = AuditEvent.objects.filter(account=provider).order_by("-id")
    assert [e.kind for e in events[:2]] == [kinds.SIGNED_IN.code, kinds.PASSKEY_USED.code]
    assert events[1].details == "Successful verification of passkey for user dorothy Ludwig"


def test_the_first_passkey_turns_two_factor_on_and_signs_out_the_other_sessions(provider):
    elsewhere = at_origin()
    elsewhere.force_login(provider)
    client = at_origin()
    client.force_login(provider)
    assert add_passkey(client, SoftAuthenticator()).status_code == 200
    assert mfa.mfa_enrolled(User.objects.get(pk=provider.pk))
    assert elsewhere.get("/account/settings/")["Location"].startswith("/accounts/login/")
    assert client.get("/account/settings/").status_code == 200  # this one added it: verified
    page = client.get(SECURITY).content.decode()
    assert "You have no backup codes" in page
    assert kinds.SESSION_REVOKED.code in kinds_of(provider)


def test_adding_needs_a_recent_confirmation_and_a_name(client, provider, clock):
    client.force_login(provider)
    # A blank name is refused at once, before the password is asked for.
    response = client.post(ADD, {"name": "   "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    # Without a recent confirmation the request waits for one.
    assert client.post(ADD, {"name": "Key"})["Location"].startswith("/account/confirm/")
    # The library's endpoints refuse a ceremony nobody confirmed on the Security tab.
    refused = post_json(client, REG_BEGIN)
    assert refused.status_code == 403 and refused.json()["code"] == "confirm_first"
    confirm_identity(client)
    response = client.post(ADD, {"name": "   "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert client.post(ADD, {"name": "Key"})["Location"] == SECURITY
    assert post_json(client, REG_BEGIN).status_code == 200
    clock.shift(timedelta(minutes=6))  # the confirmation has run out
    assert post_json(client, REG_BEGIN).status_code == 403
    assert not WebAuthnCredential.objects.filter(user=provider).exists()


def test_a_wrong_origin_a_foreign_or_a_removed_credential_fails_and_is_recorded(
    provider, keyed, no_throttle
):
    client = password_step(provider)
    # A phishing site's origin: the signature is right, the origin is not this site's.
    response = use_passkey(client, keyed, origin="https://ehr.example.evil")
    assert response.status_code == 422
    # Someone else's passkey, even a valid one, is not this account's second factor.
    other = make_user(Role.NURSE, practice=provider.practice, mfa=False)
    other_authenticator = SoftAuthenticator()
    other_client = at_origin()
    other_client.force_login(other)
    assert add_passkey(other_client, other_authenticator).status_code == 200
    response = use_passkey(client, other_authenticator)
    assert response.status_code == 403 and response.json()["code"] == "credential_user_mismatch"
    # A removed passkey no longer signs in.
    key = WebAuthnCredential.objects.get(user=provider)
    passkeys.passkey_remove(acting_user=provider, passkey_id=key.pk, ip=None)
    add_stand_in_passkey(provider)  # the account still has a passkey: the step still asks
    response = use_passkey(client, keyed)
    assert response.status_code == 404 and response.json()["code"] == "credential_not_found"
    # None of these signed in; each is recorded against the account that tried.
    assert client.get("/account/settings/")["Location"].startswith("/accounts/login/")
    failed = AuditEvent.objects.filter(account=provider, kind=kinds.PASSKEY_FAILED.code)
    assert failed.count() == 3
    assert failed.first().details == "Unsuccessful verification of passkey for user dorothy Ludwig"
    assert not AuditEvent.objects.filter(account=other, kind=kinds.PASSKEY_FAILED.code).exists()


def test_failures_are_throttled_like_wrong_codes_and_a_success_resets_them(provider, keyed, clock):
    client = password_step(provider)
    assert use_passkey(client, keyed, origin="https://evil.example").status_code == 422
    refused = post_json(client, AUTH_BEGIN)
    assert refused.status_code == 429
    assert (
        "Too many failed attempts with a passkey. Try again in 1 second" in refused.json()["detail"]
    )
    clock.shift(timedelta(seconds=1))
    assert use_passkey(client, keyed, origin="https://evil.example").status_code == 422
    clock.shift(timedelta(seconds=1))
    assert post_json(client, AUTH_BEGIN).status_code == 429  # now 2 seconds: doubled
    clock.shift(timedelta(seconds=1))
    assert use_passkey(client, keyed).status_code == 200
    assert passkeys.passkey_throttled_until(provider) is None
    assert provider.passkey_failures.throttling_failure_count == 0


def test_the_sign_in_step_needs_the_password_step_first(provider, keyed):
    client = at_origin()
    response = post_json(client, AUTH_BEGIN)
    assert response.status_code == 403  # no passwordless sign-in
    # Nor does the password step of one account open another's passkey check.
    assert not AuditEvent.objects.filter(kind=kinds.PASSKEY_USED.code).exists()


def test_a_passkey_confirms_a_prompt_once(client, provider, keyed):
    client.force_login(provider)  # signed in with the passkey
    page = client.get(PIN_VIEW).content.decode()
    assert 'value="passkey"' in page and "passkey-verification-button" in page
    # Chose the passkey but did not use it: refused, nothing counted as a wrong password.
    response = client.post(PIN_VIEW, {"password": PASSWORD, "method": "passkey"})
    assert response.status_code == 400
    assert "Use your passkey or security key first" in response.content.decode()
    answer = use_passkey(client, keyed)
    assert answer.status_code == 200 and answer.json()["redirect_url"] == ""  # stays on the page
    response = client.post(PIN_VIEW, {"password": PASSWORD, "method": "passkey"})
    assert response.status_code == 302 and response["Location"] == "/account/pins/shown/"
    # Used once: the next prompt needs the passkey again.
    assert client.post(PIN_VIEW, {"password": PASSWORD, "method": "passkey"}).status_code == 400


def test_a_page_opened_at_another_address_says_where_passkeys_work(provider, keyed, settings):
    """A passkey button there could only fail: the page links to the relying party's origin."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    elsewhere = Client(SERVER_NAME="127.0.0.1")
    elsewhere.force_login(provider)
    where = 'Passkeys work only at <a href="http://localhost{path}">'
    security = elsewhere.get(SECURITY).content.decode()
    assert where.format(path=SECURITY) in security and "not at this address (127.0.0.1)" in security
    assert 'action="/account/security/passkeys/add/"' not in security
    prompt = elsewhere.get(PIN_VIEW).content.decode()
    assert where.format(path=PIN_VIEW) in prompt
    assert "passkey-verification-button" not in prompt and "Use a code here" in prompt
    # At the relying party's origin the same pages offer the passkey, and say nothing.
    client = at_origin()
    client.force_login(provider)
    for path in (SECURITY, PIN_VIEW):
        assert "Passkeys work only at" not in client.get(path).content.decode()
    assert 'action="/account/security/passkeys/add/"' in client.get(SECURITY).content.decode()
    # The sign-in step of an account with a passkey says it too.
    signing_in = Client(SERVER_NAME="127.0.0.1")
    signing_in.post("/accounts/login/", {"username": provider.username, "password": PASSWORD})
    step = signing_in.get("/accounts/login/mfa/").content.decode()
    assert "Sign in there to use your passkey" in step
    assert where.format(path="/accounts/login/") in step  # the step opens only after the first
    assert "passkey-verification-button" not in step


def test_a_passkey_confirmation_does_not_outlive_its_minutes(client, provider, keyed, clock):
    client.force_login(provider)
    assert use_passkey(client, keyed).status_code == 200
    clock.shift(timedelta(seconds=passkeys.PROOF_SECONDS + 1))
    assert client.post(PIN_VIEW, {"password": PASSWORD, "method": "passkey"}).status_code == 400


def test_removing_a_passkey_asks_first_and_only_removes_ones_own(client, provider, keyed):
    key = WebAuthnCredential.objects.get(user=provider)
    remove = f"/account/security/passkeys/{key.pk}/remove/"
    client.force_login(provider)
    assert client.post(remove)["Location"].startswith("/account/confirm/")
    other = make_user(Role.NURSE, practice=provider.practice, mfa=False)
    other_client = at_origin()
    other_client.force_login(other)
    confirm_identity(other_client)
    assert other_client.post(remove).status_code == 404  # someone else's: not found
    confirm_identity(client)
    assert client.post(remove)["Location"] == SECURITY
    assert not WebAuthnCredential.objects.filter(pk=key.pk).exists()
    event = AuditEvent.objects.filter(kind=kinds.PASSKEY_REMOVED.code).get()
    assert event.account == provider and event.details == "Passkey removed for user dorothy Ludwig"


def test_a_privileged_role_without_a_passkey_is_held_at_the_security_tab(client, practice):
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice, grace=False)
    client.force_login(officer)  # signed in with the authenticator app
    assert client.get("/audit/")["Location"] == SECURITY
    page = client.get(SECURITY).content.decode()
    assert "Your role requires a passkey or security key." in page
    # The way to add one is open: the prompt, and the add itself.
    assert client.get("/account/confirm/").status_code == 200
    assert add_passkey(client, SoftAuthenticator()).status_code == 200
    assert client.get("/audit/").status_code == 200


def test_the_grace_period_shows_a_notice_then_holds(client, practice, settings):
    settings.MFA_PHISHING_RESISTANT_GRACE_DAYS = 30
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, grace=False)
    User.objects.filter(pk=admin.pk).update(passkey_grace_from=timezone.now())
    client.force_login(admin)
    page = client.get("/practice/staff/")
    assert page.status_code == 200
    assert "Your role will need a passkey or security key" in page.content.decode()
    started = timezone.now() - timedelta(days=30, seconds=1)  # the grace has run out
    User.objects.filter(pk=admin.pk).update(passkey_grace_from=started)
    assert client.get("/practice/staff/")["Location"] == SECURITY


def test_the_policy_names_its_roles_in_settings(client, practice, settings):
    auditor = make_user(Role.PLATFORM_AUDITOR, grace=False)
    client.force_login(auditor)
    assert client.get("/audit/")["Location"] == SECURITY
    settings.MFA_PHISHING_RESISTANT_ROLES = ["support_agent"]
    assert client.get("/audit/").status_code == 200
    settings.MFA_PHISHING_RESISTANT_ROLES = ["support_agent", "provider"]
    provider = make_user(Role.PROVIDER, practice=practice, mfa=True, grace=False)
    other = at_origin()
    other.force_login(provider)
    assert other.get("/account/settings/")["Location"] == SECURITY


def test_the_grace_starts_for_accounts_with_an_app_only_when_the_policy_comes(db, practice):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0012_passkeys")
    with_app = make_user(Role.SUPPORT_AGENT, grace=False)
    without = make_user(Role.SUPPORT_AGENT, mfa=False)
    provider = make_user(Role.PROVIDER, practice=practice, mfa=True, grace=False)
    migration.start_grace(apps, None)
    graced = set(User.objects.filter(passkey_grace_from__isnull=False).values_list("pk", flat=True))
    assert graced == {with_app.pk}
    assert without.pk not in graced and provider.pk not in graced


def test_a_passkey_step_begun_before_the_password_changed_is_refused(provider, keyed):
    """The password step it followed is void: the passkey is not asked, nor accepted."""
    from accounts.services import user_password_change

    client = password_step(provider)
    options = post_json(client, AUTH_BEGIN)
    assert options.status_code == 200
    user_password_change(
        account=provider, acting_user=provider, new_password="A-new-Pass-2031!", ip=None
    )
    response = use_passkey(client, keyed)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    assert post_json(client, AUTH_BEGIN).status_code == 403


def test_the_sign_in_step_of_an_account_with_passkeys_only_offers_backup_codes(provider, keyed):
    client = password_step(provider)
    response = client.get("/accounts/login/mfa/")
    form = response.context["form"]
    assert [value for value, _ in form.fields["method"].choices] == ["backup"]
    code = mfa.mfa_backup_codes_replace(acting_user=provider, ip=None)[0]
    response = client.post("/accounts/login/mfa/", {"method": "backup", "code": code})
    assert response.status_code == 302  # a lost passkey: the backup codes still sign in


def test_an_app_code_of_a_privileged_account_with_a_passkey_opens_the_security_tab_only(
    practice, provider
):
    agent = make_user(Role.SUPPORT_AGENT, passkey=True)  # an app and a passkey
    client = password_step(agent)
    response = client.post("/accounts/login/mfa/", {"method": "app", "code": totp_code(agent)})
    assert response.status_code == 302
    assert client.get("/support/validate/")["Location"] == SECURITY
    page = client.get(SECURITY).content.decode()
    assert "this session used another way, so only the Security tab is open" in page
    # The Security tab's own actions stay open: replacing a lost passkey.
    lost = WebAuthnCredential.objects.get(user=agent)
    authenticator = SoftAuthenticator()
    other = at_origin()
    other.force_login(agent)
    assert add_passkey(other, authenticator, name="Second key").status_code == 200
    confirm_identity(client)
    assert client.post(f"/account/security/passkeys/{lost.pk}/remove/")["Location"] == SECURITY
    assert client.get("/support/validate/")["Location"] == SECURITY
    # Using a passkey in that session (at a prompt) lets it on.
    assert use_passkey(client, authenticator).status_code == 200
    assert client.get("/support/validate/").status_code == 200
    # A role the policy does not name keeps the app as a full second factor.
    add_stand_in_passkey(provider)
    mfa.mfa_enroll_with_key(user=provider, key_hex="3132333435363738393031323334353637383930")
    client = password_step(provider)
    response = client.post("/accounts/login/mfa/", {"method": "app", "code": totp_code(provider)})
    assert response.status_code == 302
    assert client.get("/account/settings/").status_code == 200


def test_a_platform_administrator_resets_a_lost_second_factor(provider, keyed, practice):
    root = make_user(Role.PLATFORM_AUDITOR)
    client = at_origin()
    client.force_login(provider)
    mfa.mfa_reset(account=provider, acting_user=root, ip="203.0.113.9")
    assert not WebAuthnCredential.objects.filter(user=provider).exists()
    assert not mfa.mfa_enrolled(User.objects.get(pk=provider.pk))
    event = AuditEvent.objects.filter(kind=kinds.MFA_RESET.code).get()
    assert event.actor == root and event.account == provider
    assert event.details == "Two-factor authentication reset for user dorothy Ludwig"
    assert not UserSession.objects.filter(user=provider, ended_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("rp_id", "origins", "debug"),
    [
        ("127.0.0.1", ["https://127.0.0.1"], False),  # an IP address is never an RP id
        ("ehr.example.org", ["http://ehr.example.org"], False),  # plain HTTP
        ("ehr.example.org", ["https://ehr.example.evil"], False),  # another site
        ("ehr.example.org", ["https://example.org"], False),  # the parent, not a child
        ("https://ehr.example.org", ["https://ehr.example.org"], False),
        ("ehr.example.org", [], False),
        ("", [], False),  # production, a served host, and no RP id
    ],
)
def test_start_up_refuses_a_relying_party_webauthn_would_never_accept(rp_id, origins, debug):
    from ehr.settings import check_webauthn

    with pytest.raises(ImproperlyConfigured):
        check_webauthn(rp_id, origins, debug=debug, hosts=["ehr.example.org"])


def test_start_up_accepts_the_site_and_its_subdomains_and_localhost():
    from ehr.settings import check_webauthn, webauthn_defaults

    check_webauthn(
        "example.org",
        ["https://example.org", "https://ehr.example.org:8443"],
        debug=False,
        hosts=["ehr.example.org"],
    )
    check_webauthn("localhost", ["http://localhost:8000"], debug=True, hosts=[])
    assert webauthn_defaults(debug=False, hosts=["10.0.0.5", "ehr.example.org"]) == (
        "ehr.example.org",
        ["https://ehr.example.org"],
    )
    assert webauthn_defaults(debug=True, hosts=[])[0] == "localhost"


def test_the_reset_is_an_action_of_the_django_admin(provider, keyed):
    root = make_user(Role.PLATFORM_AUDITOR, username="root")
    User.objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    client = at_origin()
    client.force_login(User.objects.get(pk=root.pk))
    confirm_identity(client)  # each change in the admin asks first
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [provider.pk]},
    )
    assert response.status_code == 302
    assert not WebAuthnCredential.objects.filter(user=provider).exists()
    event = AuditEvent.objects.filter(kind=kinds.MFA_RESET.code).get()
    assert event.actor_id == root.pk and event.account == provider


def test_the_owner_is_mailed_when_a_passkey_is_added_or_removed(smtp_server, client, provider):
    """A relayed session that adds its own passkey is seen by the one who knows it was not them."""
    from django.core.management import call_command

    client.force_login(provider)
    assert add_passkey(client, SoftAuthenticator(), name="Evil key").status_code == 200
    key = WebAuthnCredential.objects.get(user=provider)
    confirm_identity(client)
    assert client.post(f"/account/security/passkeys/{key.pk}/remove/")["Location"] == SECURITY
    call_command("outbox_worker", "--once")
    assert [m["To"] for m in smtp_server.messages] == [provider.email, provider.email]
    assert {m["Subject"] for m in smtp_server.messages} == {"A passkey changed on your EHR account"}
    bodies = [m.get_payload() for m in smtp_server.messages]
    assert 'The passkey or security key "Evil key" was added to your account' in bodies[0]
    assert 'The passkey or security key "Evil key" was removed from your account' in bodies[1]
    handle = WebAuthnUserHandle.objects.get(user=provider).handle
    assert all(b64url(handle) not in body and handle.hex() not in body for body in bodies)
