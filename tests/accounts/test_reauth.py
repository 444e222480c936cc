import re
import time
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from audit.models import AuditEvent
from tests.factories import streamed, totp_code
from tests.support_pin.helpers import current_pin

CONFIRM = "/account/confirm/"


@pytest.fixture
def clock():
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def stale(clock, provider_client):
    """Signed in six minutes ago, active since (the idle timeout is not the point here)."""
    clock.shift(6 * 60)
    return provider_client


def test_sensitive_pages_need_a_recent_confirmation(stale, provider, password):
    response = stale.get("/audit/export.csv")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{CONFIRM}?action=")
    response = stale.post(response["Location"], {"password": password})
    # The export is started by a page that says so (tests/accounts/test_pending_action.py).
    assert response.status_code == 200
    assert 'content="0; url=/audit/export.csv"' in response.content.decode()
    response = stale.get("/audit/export.csv")
    assert response.status_code == 200
    assert streamed(response).startswith(b"Date,Time,Patient,")


def test_a_stale_post_changes_nothing_until_confirmed(stale, provider):
    before = current_pin(provider)
    response = stale.post(
        "/account/pins/support/generate/", HTTP_REFERER="http://testserver/account/settings/"
    )
    assert response["Location"].startswith(f"{CONFIRM}?action=")
    assert current_pin(provider) == before


def test_signing_in_is_not_a_confirmation(client, provider, password):
    client.post("/accounts/login/", {"username": "dorothy", "password": password})
    assert client.get("/audit/export.csv")["Location"].startswith(CONFIRM)


def test_any_prompt_passed_opens_the_window_for_five_minutes(provider_client, password, clock):
    """The PIN prompt is a confirmation too: the export needs no second one right after."""
    assert provider_client.post("/account/pins/support/", {"password": password}).status_code == 302
    clock.shift(4 * 60)
    response = provider_client.get("/audit/export.csv")
    assert response.status_code == 200
    assert streamed(response).startswith(b"Date,Time,Patient,")
    clock.shift(2 * 60)
    assert provider_client.get("/audit/export.csv")["Location"].startswith(CONFIRM)


def test_a_wrong_password_is_refused_audited_and_counted(stale, provider):
    response = stale.post(CONFIRM, {"password": "not-mine"})
    assert response.status_code == 400
    assert "The password is not correct." in response.content.decode()
    assert AuditEvent.objects.filter(kind="security.reauth_failed").count() == 1
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.get(username="dorothy").failures_since_start == 1


def test_enrolled_accounts_also_give_a_code(client, agent, password, clock):
    client.force_login(agent)
    clock.shift(6 * 60)
    page = client.get(CONFIRM).content.decode()
    assert "Code from" in page
    assert (
        client.post(CONFIRM, {"password": password, "method": "app", "code": "000000"}).status_code
        == 400
    )
    clock.shift(31)
    response = client.post(
        CONFIRM + "?next=/support/validate/",
        {"password": password, "method": "app", "code": totp_code(agent)},
    )
    assert response["Location"] == "/support/validate/"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_next_never_leaves_the_site(stale, password, target):
    response = stale.post(f"{CONFIRM}?next={target}", {"password": password})
    assert response["Location"] == "/"


def test_no_link_in_any_template_saves_its_answer_as_a_file():
    """A link with the `download` attribute saves whatever comes back, unseen.

    When the confirmation window has lapsed, what comes back from an export is the
    password prompt: Chromium then saved it as `download.html` and showed nothing.
    Files are named by the server's Content-Disposition instead, so the prompt can
    show when it is the answer.
    """
    saving = re.compile(r"<a\b[^>]*\sdownload\b", re.IGNORECASE | re.DOTALL)
    found = [
        str(path.relative_to(settings.BASE_DIR))
        for folder in settings.TEMPLATES[0]["DIRS"]
        for path in Path(folder).rglob("*.html")
        if saving.search(path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize("path", ["//evil.example/x", "/\\evil.example/x"])
def test_the_prompts_way_back_never_leaves_the_site(stale, path):
    """A page of this site at `//evil.example/x` is, as a path alone, a link elsewhere."""
    response = stale.post(
        "/account/pins/support/generate/", HTTP_REFERER=f"http://testserver{path}", follow=True
    )
    page = response.content.decode()
    assert response.status_code == 200 and "evil.example" not in page
    safe = stale.post(
        "/account/pins/support/generate/",
        HTTP_REFERER="http://testserver/account/settings/",
        follow=True,
    )
    assert 'href="/account/settings/"' in safe.content.decode()
