"""The same authenticator code sent in several requests at once signs in exactly once."""

import pytest
from django.test import Client

from accounts.roles import Role
from tests.concurrency import run_together
from tests.factories import PASSWORD, make_user, totp_code


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_one_code_in_concurrent_requests_passes_exactly_once(practice, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # this test is about the race only
    user = make_user(Role.COMPLIANCE_OFFICER, practice=practice)
    clients = []
    for _ in range(6):
        client = Client()
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": PASSWORD}
        )
        assert response["Location"] == "/accounts/login/mfa/"
        clients.append(client)
    code = totp_code(user)

    def send(client):
        return client.post("/accounts/login/mfa/", {"method": "app", "code": code}).status_code

    statuses, errors = run_together(send, clients)
    assert errors == []
    assert sorted(statuses) == [302, 400, 400, 400, 400, 400]
