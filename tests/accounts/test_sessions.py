from django.test import Client

from accounts.models import UserSession
from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import make_user

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
    laptop.post("/account/security/", {"action": "end_session", "session": other.pk})
    response = phone.get("/account/settings/", follow=True)
    assert response.redirect_chain[0][0].startswith("/accounts/login/")
    assert "This session was signed out from another session." in response.content.decode()
    assert "signed out from another" not in phone.get("/accounts/login/").content.decode()
    assert laptop.get("/account/settings/").status_code == 200
    event = AuditEvent.objects.get(kind="security.session_revoked")
    assert event.details == "Signed out 1 session(s) of user dorothy Ludwig remotely"


def test_sign_out_all_other_sessions(provider, password):
    first = browser(provider, password, CHROME)
    second = browser(provider, password, FIREFOX)
    third = browser(provider, password, FIREFOX)
    first.post("/account/security/", {"action": "end_others"})
    assert second.get("/account/settings/").status_code == 302
    assert third.get("/account/settings/").status_code == 302
    assert first.get("/account/settings/").status_code == 200


def test_a_session_cannot_end_another_users_session(provider, nurse, password):
    dorothy = browser(provider, password, CHROME)
    dori = browser(nurse, password, FIREFOX)
    dori_session = UserSession.objects.get(user=nurse)
    dorothy.post("/account/security/", {"action": "end_session", "session": dori_session.pk})
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


def test_changing_the_password_signs_out_the_other_sessions(provider, password):
    mine = browser(provider, password, CHROME)
    other = browser(provider, password, FIREFOX)
    response = mine.post(
        "/account/password/",
        {
            "old_password": password,
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
    client.post("/accounts/logout/")  # ended by its owner: nothing to explain next time
    client.cookies["sessionid"] = UserSession.objects.get(user=provider).key_hash
    assert "signed out" not in client.get("/accounts/login/").content.decode()


def test_practice_admin_signs_a_staff_member_out_everywhere(provider, nurse, password, practice):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    dori = browser(nurse, password, CHROME)
    client = Client()
    client.force_login(admin)
    response = client.post(f"/practice/staff/{nurse.pk}/sign-out/")
    assert response.status_code == 302
    assert dori.get("/account/staff/").status_code == 302


def test_signing_out_ends_the_record(provider, password):
    client = browser(provider, password, CHROME)
    client.post("/accounts/logout/")
    assert UserSession.objects.get(user=provider).end_reason == "signed_out"
