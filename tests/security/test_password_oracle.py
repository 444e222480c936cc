"""A stolen session guessing the account's password: every prompt is one gate.

Each prompt inside a session counts a wrong password where sign-in failures
count, refuses while the account is locked (even the right password), and
records the attempt; so guessing from inside a session is no faster than at
the sign-in page.
"""

import pytest
from axes.models import AccessAttempt
from django.test import Client

from audit.models import AuditEvent
from support_pin.models import AccountPins
from tests.factories import PASSWORD, confirm_identity
from tests.support_pin.helpers import current_pin

NEW = "A-new-passw0rd-9"

# name -> (url, extra fields, what the prompt records for a wrong password)
PROMPTS = {
    "PIN view": ("/account/pins/support/", {}, "PIN view refused"),
    "App Unlock PIN": ("/account/pins/app/", {}, "PIN view refused"),
    "re-authentication": ("/account/confirm/", {}, "Confirmation before a sensitive action"),
    "password change": (
        "/account/password/",
        {"new_password1": NEW, "new_password2": NEW},
        "Password change refused",
    ),
    "two-factor set-up": ("/account/security/mfa/start/", {}, "Two-factor change refused"),
    "ending other sessions": (
        "/account/security/sessions/end-others/",
        {},
        "Signing out other sessions refused",
    ),
}


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_guessing_at_a_prompt_locks_every_prompt_and_sign_in(name, provider, provider_client):
    url, extra, recorded = PROMPTS[name]
    for n in range(5):
        response = provider_client.post(url, {"password": f"guess-{n}", **extra})
        assert response.status_code in (400, 429), n
    assert AccessAttempt.objects.get(username="dorothy").failures_since_start == 5
    assert AuditEvent.objects.filter(details__startswith=recorded).count() == 5
    # Locked: the right password is refused at this prompt and at every other one.
    for other_url, other_extra, _ in PROMPTS.values():
        response = provider_client.post(other_url, {"password": PASSWORD, **other_extra})
        assert response.status_code == 429, other_url
        assert "Too many wrong passwords" in response.content.decode()
    provider.refresh_from_db()
    assert provider.check_password(PASSWORD)  # the password change did not happen
    assert AuditEvent.objects.filter(kind="security.password_prompt_refused_locked").count() == 6
    # And sign-in from the same address is refused too.
    response = Client().post("/accounts/login/", {"username": "dorothy", "password": PASSWORD})
    assert response.status_code == 429


def test_the_email_change_prompt_counts_and_is_refused_while_locked(nurse, nurse_client):
    data = {"email": "thief@example.net", "home_phone": "", "cell_phone": ""}
    statuses = [
        nurse_client.post("/account/staff/", {**data, "password": f"g{n}"}).status_code
        for n in range(5)
    ]
    assert statuses == [400, 400, 400, 400, 429]  # the fifth locks
    response = nurse_client.post("/account/staff/", {**data, "password": PASSWORD})
    assert response.status_code == 429 and "Too many wrong passwords" in response.content.decode()
    nurse.refresh_from_db()
    assert nurse.email == "dori@example.org"
    assert AccessAttempt.objects.get(username="dori").failures_since_start == 5


def test_a_locked_pin_prompt_shows_no_pin(provider, provider_client):
    for n in range(5):
        provider_client.post("/account/pins/support/", {"password": f"guess-{n}"})
    response = provider_client.post("/account/pins/support/", {"password": PASSWORD})
    assert current_pin(provider) not in response.content.decode()
    assert not AuditEvent.objects.filter(kind="support_pin.viewed").exists()


def test_a_right_password_before_the_limit_still_works(provider, provider_client):
    for n in range(4):
        provider_client.post("/account/confirm/", {"password": f"guess-{n}"})
    assert provider_client.post("/account/pins/support/", {"password": PASSWORD}).status_code == 302
    confirm_identity(provider_client)
    assert AccountPins.objects.filter(user=provider).exists()


def test_a_prompt_that_locks_records_the_lock(provider_client):
    for n in range(5):
        provider_client.post("/account/confirm/", {"password": f"guess-{n}"})
    details = list(AuditEvent.objects.order_by("id").values_list("details", flat=True))
    assert details[-2:] == [
        "Confirmation before a sensitive action failed for user dorothy Ludwig: wrong password",
        "Sign-in locked for user dorothy Ludwig after repeated failures",
    ]


def test_the_admin_sets_no_password_outside_the_gate(people):
    from accounts.roles import Role

    root = people[Role.PLATFORM_AUDITOR.value]
    type(root).objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(type(root).objects.get(pk=root.pk))
    confirm_identity(client)  # each change in the admin asks first
    # The admin's own password change is the site's, behind the gate.
    assert client.get("/admin/password_change/")["Location"] == "/account/password/"
    response = client.post(
        "/admin/password_change/",
        {"old_password": "guess", "new_password1": NEW, "new_password2": NEW},
    )
    assert response["Location"] == "/account/password/"
    # Another account's password is not set from the admin either.
    nurse = people[Role.NURSE.value]
    url = f"/admin/accounts/user/{nurse.pk}/password/"
    response = client.post(url, {"password1": NEW, "password2": NEW})
    assert response.status_code == 302
    nurse.refresh_from_db()
    root.refresh_from_db()
    assert nurse.check_password(PASSWORD) and root.check_password(PASSWORD)
