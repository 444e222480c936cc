"""`next=` never sends a signed-in user to another site."""

import pytest
from django.test import Client

from accounts.roles import Role
from tests.factories import PASSWORD

TARGETS = [
    "https://evil.example/",
    "//evil.example/x",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http://testserver@evil.example/",
]


@pytest.mark.parametrize("target", TARGETS)
def test_sign_in_next_stays_on_the_site(people, target):
    client = Client()
    response = client.post(
        f"/accounts/login/?next={target}",
        {"username": people[Role.PROVIDER.value].username, "password": PASSWORD, "next": target},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_sign_in_next_on_the_site_is_followed(people):
    client = Client()
    response = client.post(
        "/accounts/login/",
        {"username": people[Role.PROVIDER.value].username, "password": PASSWORD, "next": "/audit/"},
    )
    assert response["Location"] == "/audit/"
