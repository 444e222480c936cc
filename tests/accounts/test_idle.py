import time

import pytest
import time_machine

from audit.models import AuditEvent

PAGE = "/account/settings/"
STATUS = "/session/status/"
BACKGROUND = {"HTTP_X_SESSION_BACKGROUND": "1"}


@pytest.fixture
def clock():
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


def signed_in(client, provider, password):
    assert (
        client.post("/accounts/login/", {"username": "dorothy", "password": password}).status_code
        == 302
    )


def test_fifteen_idle_minutes_end_the_session_on_the_server(client, provider, password, clock):
    signed_in(client, provider, password)
    assert client.get(PAGE).status_code == 200
    clock.shift(15 * 60 - 5)
    assert client.get(PAGE).status_code == 200  # activity: the clock starts again
    clock.shift(15 * 60 + 1)
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"]).content.decode()
    assert "You were signed out after 15 minutes of inactivity." in page
    event = AuditEvent.objects.filter(kind="security.signed_out_automatically").get()
    assert event.details == "Automatically signed out user dorothy Ludwig after inactivity"
    assert event.actor_id is None and event.account_id == provider.pk


def test_background_requests_do_not_count_as_activity(client, provider, password, clock):
    signed_in(client, provider, password)
    client.get(PAGE)
    for _ in range(6):
        clock.shift(150)
        response = client.get(STATUS, **BACKGROUND)
        assert response.status_code == 200
    assert response.json()["remaining"] == 0
    clock.shift(2)
    assert client.get(STATUS, **BACKGROUND).status_code == 401
    assert client.get(PAGE).status_code == 302


def test_another_sites_page_opening_the_site_does_not_count_as_activity(
    client, provider, password, clock
):
    """A page left open elsewhere, opening the site again and again, does not keep an
    unattended session alive; the site's own pages, and an address typed, do."""
    signed_in(client, provider, password)
    for _ in range(3):
        clock.shift(5 * 60)
        assert client.get(PAGE, HTTP_SEC_FETCH_SITE="cross-site").status_code == 200
    clock.shift(60)
    assert client.get(PAGE, HTTP_SEC_FETCH_SITE="cross-site").status_code == 302  # signed out
    # Nor do the parts such a page loads from the site (a picture, a script), same-origin.
    signed_in(client, provider, password)
    parts = {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_SEC_FETCH_DEST": "image"}
    for _ in range(3):
        clock.shift(5 * 60)
        client.get(PAGE, **parts)
    clock.shift(60)
    assert client.get(PAGE).status_code == 302
    signed_in(client, provider, password)
    for site, dest in (("same-origin", "document"), ("none", "document"), ("same-origin", "empty")):
        clock.shift(14 * 60)
        headers = {"HTTP_SEC_FETCH_SITE": site, "HTTP_SEC_FETCH_DEST": dest}
        assert client.get(PAGE, **headers).status_code == 200
    clock.shift(14 * 60)
    assert client.get(PAGE).status_code == 200


def test_stay_signed_in_counts(client, provider, password, clock):
    signed_in(client, provider, password)
    clock.shift(14 * 60)
    assert client.get(STATUS, **BACKGROUND).json()["remaining"] == 60
    assert client.post("/session/keepalive/").json()["remaining"] == 15 * 60
    clock.shift(14 * 60)
    assert client.get(PAGE).status_code == 200


def test_keepalive_needs_csrf_and_a_session(provider, password, client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(provider)
    assert strict.post("/session/keepalive/").status_code == 403
    assert client.post("/session/keepalive/").status_code == 401
    assert client.get(STATUS).status_code == 401


def test_the_warning_dialog_is_on_every_signed_in_page(client, provider, password):
    signed_in(client, provider, password)
    page = client.get(PAGE).content.decode()
    assert (
        'id="idle-dialog"' in page and 'data-timeout="900"' in page and 'data-warning="60"' in page
    )
    assert "Stay signed in" in page and "js/session.js" in page
