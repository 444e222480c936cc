"""Findings of an outside attacker's pass, each tried the way it was found."""

import pytest
from axes.models import AccessAttempt
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts.roles import Role
from support_pin.models import AccountPins
from support_pin.services import support_pin_validate
from tests.factories import make_user
from tests.support_pin.helpers import current_pin


def test_an_unknown_username_is_not_kept_in_clear_yet_still_locks(db):
    typed = "Hunter2-Typed-Into-Username"
    client = Client()
    for _ in range(5):
        client.post("/accounts/login/", {"username": typed, "password": "whatever"})
    rows = " ".join(str(value) for value in AccessAttempt.objects.values_list())
    assert typed not in rows and typed.lower() not in rows
    response = client.post("/accounts/login/", {"username": typed, "password": "whatever"})
    assert response.status_code == 429  # the lock on that name holds


def test_a_known_username_is_recorded_as_itself(provider):
    Client().post("/accounts/login/", {"username": "dorothy", "password": "wrong"})
    assert AccessAttempt.objects.get().username == "dorothy"


@pytest.mark.parametrize(
    "url",
    [
        "/account/images/" + "9" * 25 + "/picture/0123456789abcdef/",
        "/practice/staff/" + "9" * 25 + "/deactivate/",
        "/practice/staff/" + "9" * 19 + "/role/",
    ],
)
def test_ids_too_long_for_the_database_are_not_found(provider_client, url):
    assert provider_client.get(url).status_code == 404
    assert provider_client.post(url).status_code == 404


def test_an_agent_cannot_validate_its_own_support_pin(agent):
    client = Client()
    client.force_login(agent)
    response = client.post(
        "/support/validate/pin/", {"account": agent.pk, "pin": current_pin(agent)}
    )
    assert response.status_code == 400
    assert "You cannot validate your own Support PIN." in response.content.decode()
    with pytest.raises(PermissionDenied):
        support_pin_validate(acting_user=agent, account=agent, pin="1234", ip=None)
    assert AccountPins.objects.get(user=agent).failed_validations == 0


def test_another_agent_can_validate_an_agents_pin(agent):
    other = make_user(Role.SUPPORT_AGENT)
    outcome = support_pin_validate(
        acting_user=other, account=agent, pin=current_pin(agent), ip=None
    )
    assert outcome.outcome.value == "matched"


@pytest.mark.parametrize(
    "username", ["d\u043eri", "\uff44\uff4f\uff52\uff49", "dori\u200b", "dóri"]
)
def test_lookalike_usernames_are_refused(nurse, practice, username):
    """A practice admin cannot create an account named like another one."""
    from django.core.exceptions import ValidationError

    from accounts.models import User
    from accounts.services import user_create

    with pytest.raises(ValidationError):
        user_create(
            username=username,
            email="lookalike@example.org",
            password=None,
            first_name="Dori",
            last_name="Mendez",
            role=Role.NURSE,
            practice=practice,
            acting_user=None,
        )
    assert not User.objects.filter(email="lookalike@example.org").exists()


def test_a_pin_is_shown_once_and_back_cannot_show_it_again(provider, provider_client):
    from audit.models import AuditEvent
    from tests.factories import PASSWORD

    response = provider_client.post("/account/pins/support/", {"password": PASSWORD})
    assert response["Location"] == "/account/pins/shown/"  # the post is never the PIN page
    assert current_pin(provider) not in response.content.decode()
    shown = provider_client.get("/account/pins/shown/")
    assert current_pin(provider) in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    again = provider_client.get("/account/pins/shown/", follow=True)  # reload, or Back then forward
    assert current_pin(provider) not in again.content.decode()
    assert "shown only once" in again.content.decode()
    assert AuditEvent.objects.filter(kind="support_pin.viewed").count() == 1
    assert "pin_to_show" not in provider_client.session


def test_a_confirmed_prompt_does_not_show_the_pin_a_minute_later(provider, provider_client):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from tests.factories import PASSWORD

    provider_client.post("/account/pins/support/", {"password": PASSWORD})
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        page = provider_client.get("/account/pins/shown/", follow=True).content.decode()
    assert current_pin(provider) not in page


def test_no_form_tells_whether_an_address_is_used_at_another_practice(
    practice, other_provider, nurse
):
    """Adding staff, or changing one's own address, answers the same whether another
    practice uses the address or nobody does."""
    from accounts.models import User
    from tests.factories import PASSWORD, confirm_identity

    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    client = Client()
    client.force_login(admin)
    confirm_identity(client)
    answers = []
    for username, email in (("fresh1", "nobody@example.net"), ("fresh2", other_provider.email)):
        response = client.post(
            "/practice/staff/new/",
            {
                "first_name": "New",
                "last_name": "Person",
                "username": username,
                "email": email,
                "role": "scheduler",
            },
        )
        answers.append(response.status_code)
    assert answers == [302, 302]
    assert User.objects.filter(email=other_provider.email).count() == 2
    nurse_client = Client()
    nurse_client.force_login(nurse)
    data = {"home_phone": "", "cell_phone": "", "password": PASSWORD}
    elsewhere = make_user(Role.NURSE, practice=other_provider.practice, username="elsewhere")
    taken = nurse_client.post("/account/staff/", {**data, "email": elsewhere.email.upper()})
    assert taken.status_code == 302
    # Within the practice the admin can see every address anyway: that one is refused.
    same = client.post(
        "/practice/staff/new/",
        {
            "first_name": "A",
            "last_name": "B",
            "username": "fresh3",
            "email": "nobody@example.net",
            "role": "scheduler",
        },
    )
    assert same.status_code == 400
    assert "Another account of this practice already uses this email address." in (
        same.content.decode()
    )


@pytest.mark.parametrize(
    ("page", "field", "role"),
    [
        ("/account/settings/", "cell_phone", Role.PROVIDER),
        ("/account/settings/", "office_phone", Role.PROVIDER),
        ("/account/staff/", "cell_phone", Role.NURSE),
    ],
)
def test_a_stolen_session_cannot_plant_the_number_break_glass_verifies_a_caller_by(
    practice, page, field, role
):
    """With a session cookie alone (no password) an attacker set their own call-back number,
    then called support: break-glass shows the agent the numbers on file."""
    from accounts.models import ProviderProfile, StaffProfile
    from audit import kinds
    from audit.models import AuditEvent
    from tests.factories import PASSWORD

    owner = make_user(role, practice=practice, username="owner")
    client = Client()
    client.force_login(owner)
    if role == Role.PROVIDER:
        from tests.accounts.test_views import profile_post

        form, profile = profile_post(**{field: "(202) 555-0199"}), ProviderProfile
    else:
        form, profile = {"email": owner.email, field: "(202) 555-0199"}, StaffProfile

    def number() -> str:
        return str(getattr(profile.objects.get(user=owner), field) or "")

    assert client.post(page, form).status_code == 400
    assert client.post(page, {**form, "password": "a-guess"}).status_code == 400
    assert number() == ""
    refused = AuditEvent.objects.get(kind=kinds.PHONE_CHANGE_REFUSED.code)
    assert refused.account == owner
    assert AccessAttempt.objects.get(username="owner").failures_since_start == 1
    assert client.post(page, {**form, "password": PASSWORD}).status_code == 302
    assert number() == "+12025550199"
