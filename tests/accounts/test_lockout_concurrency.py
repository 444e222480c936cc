"""Wrong passwords sent together: no more are checked than the lock allows.

An attacker's pass sent 15 wrong passwords to the sign-in page at the same
moment, with the right one 50 ms behind: 12 were checked against a limit of 5,
and the right one signed in. The same at the Support PIN's password prompt
showed the PIN. These send the burst from many threads, each with its own
connection, and count the passwords the hasher was actually asked about.
"""

import threading

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client

from accounts.roles import Role
from audit.models import AuditEvent
from tests.concurrency import run_together
from tests.factories import PASSWORD, make_user

BURST = 12


@pytest.fixture
def checked(monkeypatch, settings):
    """Count the passwords the hasher verifies, from every thread."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    seen, lock = [], threading.Lock()
    verify = Argon2PasswordHasher.verify

    def counting(self, password, encoded):
        with lock:
            seen.append(password)
        return verify(self, password, encoded)

    monkeypatch.setattr(Argon2PasswordHasher, "verify", counting)
    return seen


@pytest.mark.postgres_only  # threads with their own connections, under real row locks
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_passwords_at_sign_in_checks_only_as_many_as_the_lock_allows(
    practice, settings, checked
):
    user = make_user(Role.NURSE, practice=practice)

    def guess(n):
        response = Client().post(
            "/accounts/login/", {"username": user.username, "password": f"wrong-{n}"}
        )
        return response.status_code

    statuses, errors = run_together(guess, list(range(BURST)))
    assert errors == []
    assert len(checked) == settings.AXES_FAILURE_LIMIT
    assert sorted(statuses).count(429) == BURST - settings.AXES_FAILURE_LIMIT + 1
    # One lock, recorded once, however many requests met it.
    assert AuditEvent.objects.filter(kind="security.sign_in_locked").count() == 1
    right = Client().post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert right.status_code == 429
    assert len(checked) == settings.AXES_FAILURE_LIMIT


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_passwords_at_the_pin_prompt_checks_only_as_many_as_the_lock_allows(
    practice, settings, checked
):
    user = make_user(Role.PROVIDER, practice=practice)
    clients = []
    for _ in range(BURST):
        client = Client()
        client.force_login(user)
        clients.append(client)

    def guess(client):
        return client.post("/account/pins/support/", {"password": "wrong-password"}).status_code

    _statuses, errors = run_together(guess, clients)
    assert errors == []
    assert len(checked) == settings.AXES_FAILURE_LIMIT
    refused = AuditEvent.objects.filter(kind="security.password_prompt_refused_locked").count()
    assert refused == BURST - settings.AXES_FAILURE_LIMIT
    response = clients[0].post("/account/pins/support/", {"password": PASSWORD})
    assert "/account/pins/shown/" not in response.get("Location", "")
    assert len(checked) == settings.AXES_FAILURE_LIMIT
