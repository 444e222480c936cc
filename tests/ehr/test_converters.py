"""Every id in an address is bounded before it reaches the database (ehr/converters.py)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter, StringConverter

from accounts.roles import Role
from tests.factories import make_user

APPS = ("accounts.", "alerts.", "audit.", "break_glass.", "ehr.", "outbox.", "support_pin.")


def patterns(resolver=None, prefix=""):
    """The project's own addresses (Django's admin and password reset, and libraries', left
    out), with their converters."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.lookup_str.startswith(APPS):
            yield prefix + str(entry.pattern), entry.pattern.converters


def test_no_address_of_the_site_takes_an_unbounded_number():
    unbounded = [
        route
        for route, converters in patterns()
        if any(isinstance(converter, IntConverter) for converter in converters.values())
    ]
    assert unbounded == []
    assert any("patient_id" in converters for _route, converters in patterns())


def test_the_only_free_text_in_addresses_is_checked_before_any_query():
    free = {
        (route, name)
        for route, converters in patterns()
        for name, converter in converters.items()
        if type(converter) is StringConverter
    }
    assert free == {
        # Django's password reset views decode these and refuse what does not decode.
        ("accounts/password-reset/<uidb64>/<token>/", "uidb64"),
        ("accounts/password-reset/<uidb64>/<token>/", "token"),
        ("accounts/set-password/<uidb64>/<token>/", "uidb64"),
        ("accounts/set-password/<uidb64>/<token>/", "token"),
        # Django's admin unquotes and converts its object ids itself.
        ("admin/accounts/user/<id>/password/", "id"),
        # A profile image's kind and version: compared with fixed names and a digest.
        ("account/images/<id:user_id>/<str:kind>/<str:version>/", "kind"),
        ("account/images/<id:user_id>/<str:kind>/<str:version>/", "version"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    [
        "/audit/subject/patient/{practice}/a%00b/",
        "/audit/subject/patient/{practice}/a%00b/export.csv",
        "/audit/subject/patient/{practice}/%1F/",
        "/audit/subject/patient/{practice}/" + "x" * 65 + "/",
        "/audit/subject/patient/99999999999999999999999/P-1/",
        "/audit/subject/account/99999999999999999999999/export.fhir.json",
    ],
)
def test_an_id_no_row_can_have_is_not_found(client, practice, address):
    client.force_login(make_user(Role.PLATFORM_AUDITOR, username="auditor"))
    assert client.get(address.format(practice=practice.pk)).status_code == 404
