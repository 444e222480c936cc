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


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_event_about_the_account_written_during_its_turn_neither_waits_nor_deadlocks(
    practice, monkeypatch
):
    """The turn's row lock must let an event about the account be written meanwhile.

    An event's foreign keys take a key-share lock on the account's row; a turn that
    held the row FOR UPDATE made that write wait while it held the audit chain, and
    the turn, wanting the chain for its failure, deadlocked: a 500, and the failure
    it had checked went uncounted.
    """
    import time

    from axes.models import AccessAttempt
    from django.contrib.auth.hashers import MD5PasswordHasher

    from audit import kinds
    from audit.services import audit_event_record

    user = make_user(Role.NURSE, practice=practice)
    verify = MD5PasswordHasher.verify

    def slow(self, password, encoded):
        time.sleep(0.6)  # the hash, while the turn holds the row
        return verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", slow)

    def act(which):
        if which == "guess":
            client = Client()
            response = client.post(
                "/accounts/login/", {"username": user.username, "password": "wrong"}
            )
            return which, response.status_code, time.monotonic()
        time.sleep(0.2)  # once the guess holds its turn
        audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=user, account=user, ip=None)
        return which, None, time.monotonic()

    results, errors = run_together(act, ["guess", "event"])
    assert errors == []
    done = {which: (status, at) for which, status, at in results}
    assert done["guess"][0] == 200
    # The event went in while the guess was still hashing, not after its turn ended.
    assert done["event"][1] < done["guess"][1]
    assert AccessAttempt.objects.filter(username=user.username).exists()


@pytest.mark.django_db(transaction=True)  # no test transaction around the request
def test_only_a_known_accounts_guess_takes_a_turn(practice, monkeypatch):
    """A name no account has opens no transaction for its (dummy) hash: on SQLite a turn
    holds the database's write lock, which unknown names, endless in number, must not."""
    from django.contrib.auth.hashers import MD5PasswordHasher
    from django.db import connection

    user = make_user(Role.NURSE, practice=practice)
    during = []
    verify, encode = MD5PasswordHasher.verify, MD5PasswordHasher.encode

    def watched_verify(self, password, encoded):
        during.append(("known", connection.in_atomic_block))
        return verify(self, password, encoded)

    def watched_encode(self, password, salt):
        during.append(("unknown", connection.in_atomic_block))
        return encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "verify", watched_verify)
    monkeypatch.setattr(MD5PasswordHasher, "encode", watched_encode)
    Client().post("/accounts/login/", {"username": user.username, "password": "wrong"})
    assert ("known", True) in during
    during.clear()
    Client().post("/accounts/login/", {"username": "nobody-at-all", "password": "wrong"})
    assert during == [("unknown", False)]
