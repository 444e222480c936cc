"""What each page that loads the signed-in user costs in queries, pinned.

A page that lists things costs the same with one row as with many: N+1 queries
are caught here, not in production.
"""

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import selectors
from accounts.backends import AccountBackend
from accounts.models import User
from accounts.roles import Role
from break_glass.services import break_glass_open
from tests.factories import PASSWORD, confirm_identity, make_user

# (role, url, queries): the session, the user with its profile, the authenticator (or
# the verified device), whether the account has a passkey (a session verified with one
# knows), the roles, then what the page itself reads.
PAGES = [
    (Role.PROVIDER, "/account/settings/", 9),  # + profile, specialties, choices, lock
    (Role.PROVIDER, "/account/security/", 8),  # + pending device, passkeys, sessions
    (Role.PROVIDER, "/account/password/", 5),
    (Role.PROVIDER, "/account/confirm/", 6),  # + the sign-in lock, said before typing
    (Role.PROVIDER, "/account/pins/support/", 7),  # + the PIN row, the sign-in lock
    (Role.NURSE, "/account/staff/", 6),  # + the sign-in lock (the PIN dialogs say it)
    (Role.PRACTICE_ADMIN, "/account/staff/", 7),
    (Role.PRACTICE_ADMIN, "/practice/staff/", 8),  # + users, their roles, two lock counts
    (Role.COMPLIANCE_OFFICER, "/audit/", 6),  # + the bounded count, one page of events
    (Role.COMPLIANCE_OFFICER, "/audit/break-glass/", 5),
    (Role.PLATFORM_AUDITOR, "/audit/", 6),  # + the bounded count (the Practice box reads nothing)
    (Role.SUPPORT_AGENT, "/support/validate/?q=Test", 5),
]


def signed_in(role, practice) -> Client:
    platform = role in (Role.SUPPORT_AGENT, Role.PLATFORM_AUDITOR)
    client = Client()
    # Roles that need a passkey signed in with one, as they must once their grace is over.
    passkey = role.value in settings.MFA_PHISHING_RESISTANT_ROLES
    client.force_login(make_user(role, practice=None if platform else practice, passkey=passkey))
    confirm_identity(client)
    return client


@pytest.mark.parametrize(("role", "url", "queries"), PAGES)
def test_each_page_costs_a_fixed_number_of_queries(
    practice, django_assert_num_queries, role, url, queries
):
    client = signed_in(role, practice)
    client.get(url)  # the first request also writes the session
    with django_assert_num_queries(queries):
        assert client.get(url).status_code == 200


def count(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def test_lists_cost_the_same_with_more_rows(practice):
    admin = signed_in(Role.PRACTICE_ADMIN, practice)
    agent = signed_in(Role.SUPPORT_AGENT, practice)
    officer = signed_in(Role.COMPLIANCE_OFFICER, practice)
    provider = make_user(Role.PROVIDER, practice=practice, username="many")
    browsers = []

    def measure() -> list[int]:
        return [
            count(admin, "/practice/staff/"),
            count(agent, "/support/validate/?q=Test"),
            count(officer, "/audit/break-glass/"),
            count(browsers[0], "/account/security/"),
        ]

    for _ in range(2):
        browser = Client()
        browser.post("/accounts/login/", {"username": "many", "password": PASSWORD})
        browsers.append(browser)
    break_glass_open(
        acting_user=agent_user(agent), account=provider, justification="x" * 40, minutes=5, ip=None
    )
    before = measure()
    for n in range(5):
        make_user(Role.NURSE, practice=practice, username=f"extra{n}")
        browser = Client()
        browser.post("/accounts/login/", {"username": "many", "password": PASSWORD})
        break_glass_open(
            acting_user=agent_user(agent),
            account=provider,
            justification="x" * 40,
            minutes=5,
            ip=None,
        )
    assert measure() == before


def agent_user(client) -> User:
    return User.objects.get(pk=client.session["_auth_user_id"])


def test_the_signed_in_user_loads_with_its_profile_in_one_query(
    provider, django_assert_num_queries
):
    with django_assert_num_queries(1):
        user = AccountBackend().get_user(provider.pk)
        assert user.provider_profile.doctor_id == 496094


def test_the_profile_tab_reads_in_two_queries(provider, django_assert_num_queries):
    with django_assert_num_queries(2):
        profile = selectors.provider_profile_for_page(user=provider)
        assert profile.user.practice.name and list(profile.specialties.all()) == []


def test_the_practice_staff_list_reads_in_four_queries(
    practice, provider, nurse, django_assert_num_queries
):
    with django_assert_num_queries(4):
        rows = selectors.practice_staff(practice_id=practice.pk)
        assert {row.user.username for row in rows} == {"dorothy", "dori"}
