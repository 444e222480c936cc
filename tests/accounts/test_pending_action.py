"""The action that asked for a confirmation happens after it: once, for its own user and
session, within the confirmation window, and never an action the user did not send.

accounts/reauth.py keeps the request as the session's pending action; these tests
go through the views as a browser would, and through the attacks it must resist.
"""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from accounts.mfa import mfa_backup_codes_replace, mfa_device
from accounts.reauth import PENDING, REAUTH_AT
from accounts.roles import Role
from audit.models import AuditEvent
from break_glass.models import BreakGlassGrant
from tests.factories import PASSWORD, make_user, streamed
from tests.support_pin.helpers import current_pin

CONFIRM = "/account/confirm/"
GENERATE = "/account/pins/support/generate/"
SETTINGS = "http://testserver/account/settings/"
REASON = "Caller lost her phone and cannot read her Support PIN; verified by callback."


@pytest.fixture
def clock():
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def stale(clock, provider_client):
    """dorothy, signed in six minutes ago: the confirmation window has lapsed."""
    clock.shift(6 * 60)
    return provider_client


def action_id(response) -> str:
    """The pending action a redirect to the prompt names."""
    assert response.status_code == 302, response.status_code
    location = urlsplit(response["Location"])
    assert location.path == CONFIRM
    return parse_qs(location.query)["action"][0]


def confirm(client: Client, user, action: str | None, **extra):
    data = {"password": PASSWORD, **extra}
    if mfa_device(user) is not None:
        data |= {"method": "backup", "code": mfa_backup_codes_replace(acting_user=user, ip=None)[0]}
    url = f"{CONFIRM}?action={action}" if action else CONFIRM
    return client.post(url, data)


def generated() -> int:
    return AuditEvent.objects.filter(kind="support_pin.generated").count()


def test_a_stale_post_waits_then_happens_once_after_the_password(stale, provider):
    before = current_pin(provider)
    action = action_id(stale.post(GENERATE, HTTP_REFERER=SETTINGS))
    assert current_pin(provider) == before and generated() == 0  # nothing yet

    page = stale.get(f"{CONFIRM}?action={action}").content.decode()
    assert "Once you confirm, this happens: <strong>generate a new Support PIN</strong>" in page
    assert 'href="/account/settings/">Cancel' in page

    response = confirm(stale, provider, action)
    assert response.status_code == 302 and response["Location"] == "/"
    assert current_pin(provider) != before
    assert generated() == 1
    assert PENDING not in stale.session


def test_the_confirmation_replayed_performs_nothing_again(stale, provider):
    action = action_id(stale.post(GENERATE))
    confirm(stale, provider, action)
    after = current_pin(provider)
    response = confirm(stale, provider, action)  # the same form sent again (Back, reload)
    assert response.status_code == 302
    assert current_pin(provider) == after and generated() == 1


def test_confirmations_sent_together_run_the_action_once(stale, provider):
    """Each loaded the session with the action in it before any took it out."""
    from django.conf import settings
    from django.test import RequestFactory

    from accounts.reauth import pending_action_take
    from accounts.session_store import SessionStore

    action = action_id(stale.post(GENERATE))
    key = stale.cookies[settings.SESSION_COOKIE_NAME].value
    together = []
    for _ in range(3):
        request = RequestFactory().post(CONFIRM)
        request.user = provider
        request.session = SessionStore(key)
        assert PENDING in request.session
        together.append(request)
    taken = [pending_action_take(request, action) for request in together]
    assert taken[0] is not None and taken[0].id == action
    assert taken[1:] == [None, None]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_confirmations_racing_on_the_database_run_the_action_once(provider, monkeypatch):
    """Two confirmations that both read the session before either stored it: the row's lock
    makes the second read what the first stored."""
    import contextlib
    import threading

    from django.conf import settings
    from django.db import connection
    from django.test import RequestFactory

    from accounts.reauth import pending_action_take
    from accounts.session_store import SessionStore

    client = Client()
    client.force_login(provider)
    action = action_id(client.post(GENERATE))
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    after_read = threading.Barrier(2, timeout=2)
    save = SessionStore.save

    def save_once_both_have_read(self, *args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            after_read.wait()  # with the lock, the other is still waiting to read
        return save(self, *args, **kwargs)

    monkeypatch.setattr(SessionStore, "save", save_once_both_have_read)
    taken = []

    def confirm_in_a_thread():
        request = RequestFactory().post(CONFIRM)
        request.user = provider
        request.session = SessionStore(key)
        assert PENDING in request.session
        try:
            taken.append(pending_action_take(request, action))
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm_in_a_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(bool(action) for action in taken) == [False, True]


def test_an_action_older_than_the_window_is_void(stale, provider, clock):
    before = current_pin(provider)
    action = action_id(stale.post(GENERATE))
    clock.shift(5 * 60 + 1)
    response = confirm(stale, provider, action)
    assert response.status_code == 302
    assert current_pin(provider) == before and generated() == 0
    assert PENDING not in stale.session
    # The password itself was right: the window is open now, the next try just runs.
    assert stale.post(GENERATE).status_code == 302 and generated() == 1


def test_another_session_of_the_same_user_cannot_use_it(stale, provider, clock):
    before = current_pin(provider)
    action = action_id(stale.post(GENERATE))
    other = Client()
    other.force_login(provider)
    confirm(other, provider, action)
    assert current_pin(provider) == before and generated() == 0
    # The session it belongs to still can.
    confirm(stale, provider, action)
    assert generated() == 1


def test_another_user_signing_in_on_the_same_browser_cannot_use_it(stale, provider, nurse):
    before = current_pin(provider)
    action = action_id(stale.post(GENERATE))
    stale.force_login(nurse)
    nurse_pin = current_pin(nurse)
    confirm(stale, nurse, action)
    assert current_pin(provider) == before and current_pin(nurse) == nurse_pin
    assert generated() == 0


def test_an_action_kept_for_another_user_is_never_run(stale, provider, nurse):
    """Even inside the session, the action is bound to the user who sent it."""
    action = action_id(stale.post(GENERATE))
    session = stale.session
    session[PENDING] = {**session[PENDING], "user": nurse.pk}
    session.save()
    before = current_pin(provider), current_pin(nurse)
    confirm(stale, provider, action)
    assert (current_pin(provider), current_pin(nurse)) == before and generated() == 0


def test_a_guessed_or_stale_id_performs_nothing_and_drops_what_waited(stale, provider):
    before = current_pin(provider)
    action_id(stale.post(GENERATE))
    response = confirm(stale, provider, "not-the-id")
    assert response.status_code == 302
    assert current_pin(provider) == before and generated() == 0
    assert PENDING not in stale.session


def test_a_prompt_confirms_only_the_action_it_showed(stale, provider):
    """An action kept after the prompt was shown (say a link followed in another tab)
    replaces the one that waited; confirming the prompt on screen performs neither."""
    first = action_id(stale.post(GENERATE))
    second = action_id(stale.get("/audit/export.csv"))
    assert first != second
    before = current_pin(provider)
    confirm(stale, provider, first)
    assert current_pin(provider) == before and generated() == 0
    assert not AuditEvent.objects.filter(kind="audit.exported").exists()


def test_a_cross_site_post_is_never_kept(clock, provider):
    """A forged form from another site fails Django's CSRF check before anything is kept."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(provider)
    clock.shift(6 * 60)
    response = client.post(GENERATE, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert PENDING not in client.session


def test_the_kept_form_is_what_runs_not_what_the_confirmation_carries(clock, agent, provider):
    client = Client()
    client.force_login(agent)
    client.session  # noqa: B018  (the session exists)
    session = client.session
    session[REAUTH_AT] = time.time()
    session.save()
    clock.shift(6 * 60)
    url = f"/support/break-glass/{provider.pk}/"
    action = action_id(client.post(url, {"justification": REASON, "minutes": "10"}))
    assert not BreakGlassGrant.objects.exists()

    response = confirm(client, agent, action, justification="x" * 40, minutes="60")
    grant = BreakGlassGrant.objects.get()
    assert response["Location"] == f"/support/break-glass/grant/{grant.pk}/"
    assert grant.justification == REASON
    assert grant.agent == agent


def test_secrets_are_never_kept(clock, provider_client, provider):
    """A code typed into the authenticator set-up is not kept: the page asks for a fresh one."""
    session = provider_client.session
    session[REAUTH_AT] = time.time()
    session.save()
    provider_client.post("/account/security/mfa/start/", {"password": PASSWORD})
    clock.shift(6 * 60)
    action = action_id(provider_client.post("/account/security/mfa/confirm/", {"code": "123456"}))
    assert provider_client.session[PENDING]["data"] == []
    response = confirm(provider_client, provider, action)
    page = response.content.decode()
    assert response.status_code == 400  # the same key shown again, asking for the code
    assert "Scan this code" in page and "This field is required." in page


def test_a_download_is_started_by_a_page_not_saved_as_the_prompt(stale, provider):
    action = action_id(stale.get("/audit/export.csv?username=dorothy"))
    response = confirm(stale, provider, action)
    assert response.status_code == 200
    assert "attachment" not in response.get("Content-Disposition", "")
    page = response.content.decode()
    assert re.search(
        r'<meta http-equiv="refresh" content="0; url=/audit/export.csv\?username=dorothy">', page
    )
    download = stale.get("/audit/export.csv?username=dorothy")
    assert download["Content-Disposition"].startswith("attachment;")
    assert streamed(download).startswith(b"Date,Time,Patient,")


def test_a_page_behind_the_confirmation_is_simply_opened(clock, agent, provider):
    client = Client()
    client.force_login(agent)
    clock.shift(6 * 60)
    url = f"/support/break-glass/{provider.pk}/"
    action = action_id(client.get(url))
    response = confirm(client, agent, action)
    assert response.status_code == 302 and response["Location"] == url


def test_the_practice_admin_action_runs_with_rights_checked_again(clock, practice, nurse):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    client = Client()
    client.force_login(admin)
    clock.shift(6 * 60)
    url = f"/practice/staff/{nurse.pk}/role/"
    action = action_id(client.post(url, {"role": Role.BILLING.value}))
    nurse.refresh_from_db()
    assert not nurse.has_role(Role.BILLING)
    # Between the request and the confirmation the admin stops being one.
    admin.groups.clear()
    response = confirm(client, admin, action)
    assert response.status_code == 403
    nurse = type(nurse).objects.get(pk=nurse.pk)
    assert not nurse.has_role(Role.BILLING)


def test_the_practice_admin_action_runs_after_the_confirmation(clock, practice, nurse):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    client = Client()
    client.force_login(admin)
    clock.shift(6 * 60)
    action = action_id(client.post(f"/practice/staff/{nurse.pk}/role/", {"role": "billing"}))
    response = confirm(client, admin, action)
    assert response["Location"] == "/practice/staff/"
    nurse = type(nurse).objects.get(pk=nurse.pk)
    assert nurse.has_role(Role.BILLING)
