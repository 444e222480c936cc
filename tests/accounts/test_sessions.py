import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import UserSession
from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import confirm_identity, make_user

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def browser(user, password, agent):
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert response.status_code == 302
    return client


def test_the_security_tab_lists_sessions_and_signs_one_out(provider, password):
    laptop = browser(provider, password, CHROME)
    phone = browser(provider, password, FIREFOX)
    page = laptop.get("/account/security/").content.decode()
    assert "Chrome on Windows" in page and "Firefox on Linux" in page and "This session" in page
    assert "session_key" not in page
    other = UserSession.objects.get(user=provider, user_agent=FIREFOX)
    end = f"/account/security/sessions/{other.pk}/end/"
    assert laptop.post(end, {"password": "not-mine"}).status_code == 400  # asked at that moment
    assert phone.get("/account/settings/").status_code == 200
    laptop.post(end, {"password": password})
    response = phone.get("/account/settings/", follow=True)
    assert response.redirect_chain[0][0].startswith("/accounts/login/")
    assert (
        "This session was signed out remotely: from another of your sessions, or by an administrator."
        in response.content.decode()
    )
    assert "signed out from another" not in phone.get("/accounts/login/").content.decode()
    assert laptop.get("/account/settings/").status_code == 200
    event = AuditEvent.objects.get(kind="security.session_revoked")
    assert event.details == "Signed out 1 session of user dorothy Ludwig remotely"


def test_sign_out_all_other_sessions(provider, password):
    first = browser(provider, password, CHROME)
    second = browser(provider, password, FIREFOX)
    third = browser(provider, password, FIREFOX)
    response = first.post(
        "/account/security/sessions/end-others/", {"password": password}, follow=True
    )
    assert "Signed out 2 other sessions." in response.content.decode()
    event = AuditEvent.objects.get(kind="security.session_revoked")
    assert event.details == "Signed out 2 sessions of user dorothy Ludwig remotely"
    assert second.get("/account/settings/").status_code == 302
    assert third.get("/account/settings/").status_code == 302
    assert first.get("/account/settings/").status_code == 200


def test_a_session_cannot_end_another_users_session(provider, nurse, password):
    dorothy = browser(provider, password, CHROME)
    dori = browser(nurse, password, FIREFOX)
    dori_session = UserSession.objects.get(user=nurse)
    dorothy.post(f"/account/security/sessions/{dori_session.pk}/end/", {"password": password})
    assert dori.get("/account/staff/").status_code == 200


def test_the_session_key_changes_at_sign_in_and_is_never_stored(provider, password):
    client = Client()
    client.get("/accounts/login/")
    before = client.cookies.get("sessionid")
    client.post("/accounts/login/", {"username": "dorothy", "password": password})
    key = client.cookies["sessionid"].value
    assert before is None or before.value != key
    record = UserSession.objects.get(user=provider)
    assert key not in str(UserSession.objects.filter(pk=record.pk).values().get())
    assert record.pk == hashlib.sha256(key.encode()).hexdigest()[:40]


def test_changing_the_password_signs_out_the_other_sessions(provider, password):
    mine = browser(provider, password, CHROME)
    other = browser(provider, password, FIREFOX)
    response = mine.post(
        "/account/password/",
        {
            "password": password,
            "new_password1": "A-new-passw0rd-9",
            "new_password2": "A-new-passw0rd-9",
        },
    )
    assert response.status_code == 302
    assert mine.get("/account/settings/").status_code == 200
    response = other.get("/account/settings/", follow=True)
    assert "because the account&#x27;s password was changed" in response.content.decode()
    assert UserSession.objects.filter(end_reason="password_changed").count() == 1


def test_an_unknown_or_forged_session_cookie_gets_no_message(provider, password):
    client = Client()
    client.cookies["sessionid"] = "x" * 32
    page = client.get("/accounts/login/").content.decode()
    assert "signed out" not in page
    client.post("/accounts/login/", {"username": "dorothy", "password": password})
    hashed = UserSession.objects.get(user=provider).pk
    client.post("/accounts/logout/")  # ended by its owner: nothing to explain next time
    client.cookies["sessionid"] = hashed
    assert "signed out" not in client.get("/accounts/login/").content.decode()


def test_practice_admin_signs_a_staff_member_out_everywhere(provider, nurse, password, practice):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    dori = browser(nurse, password, CHROME)
    client = Client()
    client.force_login(admin)
    confirm_identity(client)
    response = client.post(f"/practice/staff/{nurse.pk}/sign-out/")
    assert response.status_code == 302
    assert dori.get("/account/staff/").status_code == 302


def test_signing_out_removes_the_session(provider, password):
    client = browser(provider, password, CHROME)
    client.post("/accounts/logout/")
    assert not UserSession.objects.filter(user=provider).exists()
    assert AuditEvent.objects.filter(kind="security.signed_out").count() == 1


def test_an_ended_session_never_loads_even_with_its_data_still_stored(provider, password):
    client = browser(provider, password, CHROME)
    row = UserSession.objects.get(user=provider)
    # Ended, as a remote sign-out does, but with the signed-in data left in place.
    UserSession.objects.filter(pk=row.pk).update(ended_at=timezone.now(), end_reason="revoked")
    assert UserSession.objects.get(pk=row.pk).session_data == row.session_data
    response = client.get("/account/settings/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_session_cap_holds_however_active_the_session_is(provider, password, settings):
    settings.SESSION_IDLE_TIMEOUT = 60 * 60  # so that hourly use keeps it active
    client = browser(provider, password, CHROME)
    signed_in = timezone.now()
    # A request every 50 minutes for twelve hours: active all along, never idle.
    for minutes in range(50, 12 * 60, 50):
        with time_machine.travel(signed_in + timedelta(minutes=minutes), tick=False):
            assert client.get("/account/settings/").status_code == 200, minutes
    with time_machine.travel(signed_in + timedelta(hours=12, minutes=1), tick=False):
        response = client.get("/account/settings/", follow=True)
    assert response.redirect_chain[0][0].startswith("/accounts/login/")
    assert "This session reached its time limit." in response.content.decode()
    event = AuditEvent.objects.get(kind="security.session_capped")
    assert event.details == (
        "Automatically signed out user dorothy Ludwig: the session reached its time limit"
    )
    assert UserSession.objects.get(user=provider).end_reason == "session_cap"


def test_a_password_change_keeps_this_session_with_its_sign_in_time(provider, password):
    client = browser(provider, password, CHROME)
    before = UserSession.objects.get(user=provider)
    client.post(
        "/account/password/",
        {
            "password": password,
            "new_password1": "A-new-passw0rd-9",
            "new_password2": "A-new-passw0rd-9",
        },
    )
    after = UserSession.objects.get(user=provider, ended_at__isnull=True)
    assert after.pk != before.pk  # a new key
    assert (after.created_at, after.expire_date, after.ip) == (
        before.created_at,
        before.expire_date,
        before.ip,
    )


def test_a_session_ended_during_a_request_is_not_brought_back_by_a_new_key(provider, password):
    from django.contrib.sessions.exceptions import SessionInterrupted

    from accounts.auth_events import session_end
    from accounts.session_store import SessionStore

    client = browser(provider, password, CHROME)
    store = SessionStore(client.cookies["sessionid"].value)
    assert store["_auth_user_id"] == str(provider.pk)  # loaded, as at the start of a request
    row = UserSession.objects.get(user=provider)
    session_end(account=provider, session_key=row.pk, acting_user=provider, ip=None)
    with pytest.raises(SessionInterrupted):
        store.cycle_key()  # as a password change does after it is saved
    assert not UserSession.objects.filter(user=provider, ended_at__isnull=True).exists()
    assert UserSession.objects.get(pk=row.pk).end_reason == "revoked"


def test_a_session_that_fails_to_load_for_another_reason_is_not_called_capped(provider, password):
    client = browser(provider, password, CHROME)
    type(provider).objects.filter(pk=provider.pk).update(is_active=False)  # as the admin can
    response = client.get("/account/settings/", follow=True)
    assert "time limit" not in response.content.decode()
    assert not AuditEvent.objects.filter(kind="security.session_capped").exists()


def test_clearing_expired_sessions_records_the_ones_nobody_came_back_to(provider, password):
    from django.core.management import call_command

    browser(provider, password, CHROME)
    browser(provider, password, FIREFOX)
    Client().get("/accounts/login/")  # an anonymous one
    with time_machine.travel(timezone.now() + timedelta(hours=13), tick=False):
        call_command("clearsessions")
    assert not UserSession.objects.exists()
    assert AuditEvent.objects.filter(kind="security.session_capped").count() == 2


def test_an_unverified_session_of_an_enrolled_account_is_ended_as_such(provider, password):
    client = browser(provider, password, CHROME)  # signed in before the account had a code
    from accounts.models import AuthenticatorDevice

    AuthenticatorDevice.objects.create(user=provider, name="Authenticator app", confirmed=True)
    response = client.get("/audit/", {"username": "x&y", "n": "2"})
    # Back to the same page after signing in again: its query kept, and encoded.
    assert response["Location"] == "/accounts/login/?next=/audit/%3Fusername%3Dx%2526y%26n%3D2"
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.kind, event.actor_id) == ("security.session_revoked", None)


def test_one_other_session_is_one_session(provider, password):
    first = browser(provider, password, CHROME)
    browser(provider, password, FIREFOX)
    response = first.post(
        "/account/security/sessions/end-others/", {"password": password}, follow=True
    )
    page = response.content.decode()
    assert "Signed out 1 other session." in page and "session(s)" not in page


def test_signing_a_session_out_without_the_password_puts_the_focus_on_it(provider, password):
    """The sessions' password box sits low on a long page: its error is where the page opens."""
    laptop = browser(provider, password, CHROME)
    browser(provider, password, FIREFOX)
    other = UserSession.objects.get(user=provider, user_agent=FIREFOX)
    page = laptop.post(f"/account/security/sessions/{other.pk}/end/", {}).content.decode()
    assert "This field is required." in page
    focused = re.findall(r"<input[^>]*autofocus[^>]*>", page)
    assert len(focused) == 1 and 'id="session_password"' in focused[0]
    # Without an error, nothing takes the focus away from the top of the page.
    assert "autofocus" not in laptop.get("/account/security/").content.decode()
