import pytest
from django.test import Client

from accounts.models import UserSession
from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import confirm_identity, make_user, sent_mail


def signed_in_browser(user, password):
    client = Client()
    assert (
        client.post(
            "/accounts/login/", {"username": user.username, "password": password}
        ).status_code
        == 302
    )
    return client


def admin_client(practice):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    client = Client()
    client.force_login(admin)
    confirm_identity(client)  # staff changes are behind re-authentication
    return admin, client


def test_deactivation_ends_every_session_at_once(practice, nurse, password):
    dori = signed_in_browser(nurse, password)
    _, client = admin_client(practice)
    response = client.post(f"/practice/staff/{nurse.pk}/deactivate/", {"confirm": "deactivate"})
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert not nurse.is_active
    response = dori.get("/account/staff/", follow=True)
    assert response.redirect_chain[0][1] == 302
    assert "the account is deactivated" in response.content.decode()
    assert UserSession.objects.get(user=nurse).end_reason == "deactivated"
    assert (
        Client().post("/accounts/login/", {"username": "dori", "password": password}).status_code
        == 200
    )
    client.post(f"/practice/staff/{nurse.pk}/reactivate/")
    nurse.refresh_from_db()
    assert nurse.is_active
    details = list(AuditEvent.objects.values_list("details", flat=True))
    assert "Account of user Dori User deactivated" in details
    assert "Account of user Dori User reactivated" in details


def test_deactivation_asks_for_confirmation_first(practice, nurse, password):
    dori = signed_in_browser(nurse, password)
    _, client = admin_client(practice)
    listing = client.get("/practice/staff/").content.decode()
    assert f'<a href="/practice/staff/{nurse.pk}/deactivate/">Deactivate<span' in listing
    for response in (  # the link, and a one-click post from anywhere: both only ask
        client.get(f"/practice/staff/{nurse.pk}/deactivate/"),
        client.post(f"/practice/staff/{nurse.pk}/deactivate/"),
    ):
        assert response.status_code == 200
        page = response.content.decode()
        assert "Deactivate Dori User?" in page
        assert "signed out of every session at once" in page
        assert 'name="confirm" value="deactivate"' in page
    nurse.refresh_from_db()
    assert nurse.is_active
    assert dori.get("/account/staff/").status_code == 200
    assert not AuditEvent.objects.filter(kind="account.deactivated").exists()
    response = client.post(f"/practice/staff/{nurse.pk}/deactivate/", {"confirm": "deactivate"})
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert not nurse.is_active


def test_roles_change_within_the_practice_staff_roles_only(practice, nurse, provider):
    _, client = admin_client(practice)
    client.post(f"/practice/staff/{nurse.pk}/role/", {"role": "billing"})
    nurse.refresh_from_db()
    assert set(nurse.groups.values_list("name", flat=True)) == {"billing"}
    assert AuditEvent.objects.filter(
        details="Role of user Dori User changed from nurse to billing"
    ).exists()
    for role in ("support_agent", "platform_auditor", "provider", "superuser"):
        client.post(f"/practice/staff/{nurse.pk}/role/", {"role": role})
        assert set(nurse.groups.values_list("name", flat=True)) == {"billing"}, role
    client.post(f"/practice/staff/{provider.pk}/role/", {"role": "nurse"})
    assert set(provider.groups.values_list("name", flat=True)) == {"provider"}


def test_admins_cannot_manage_themselves_or_other_practices(practice, other_provider):
    admin, client = admin_client(practice)
    assert client.post(f"/practice/staff/{admin.pk}/deactivate/").status_code == 404
    assert client.post(f"/practice/staff/{other_provider.pk}/deactivate/").status_code == 404
    other_provider.refresh_from_db()
    assert other_provider.is_active


def test_staff_cannot_manage_anyone(nurse_client, provider):
    assert nurse_client.post(f"/practice/staff/{provider.pk}/deactivate/").status_code == 403


def test_admin_adds_a_staff_member_who_sets_a_password_from_the_email(
    practice, django_capture_on_commit_callbacks
):
    import re

    from accounts.models import User

    _, client = admin_client(practice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/practice/staff/new/",
            {
                "first_name": "Sara",
                "last_name": "Ng",
                "username": "sng",
                "email": "sng@example.org",
                "role": "scheduler",
            },
        )
    assert response.status_code == 302
    user = User.objects.get(username="sng")
    assert user.practice == practice and user.roles == {"scheduler"}
    assert not user.has_usable_password()
    assert hasattr(user, "pins")
    link = re.search(r"http://testserver(/accounts/set-password/\S+/)", sent_mail()[0].body).group(
        1
    )
    visitor = Client()
    page = visitor.get(link, follow=True)
    assert "Choose your password" in page.content.decode()
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else link
    response = visitor.post(
        form_url, {"new_password1": "Sched-Pass-2031!", "new_password2": "Sched-Pass-2031!"}
    )
    assert response.status_code == 302
    assert (
        Client()
        .post("/accounts/login/", {"username": "sng", "password": "Sched-Pass-2031!"})
        .status_code
        == 302
    )
    # The link works once.
    again = Client().get(link, follow=True).content.decode()
    assert "This link is not valid any more" in again
    details = list(AuditEvent.objects.values_list("details", flat=True))
    assert "Account created for user Sara Ng with role scheduler" in details
    assert "Password changed for user Sara Ng" in details


def test_adding_refuses_bad_input_and_creates_nothing(practice, nurse):
    from accounts.models import User

    _, client = admin_client(practice)
    before = User.objects.count()
    for data in (
        {
            "first_name": "A",
            "last_name": "B",
            "username": "dori",
            "email": "x@example.org",
            "role": "nurse",
        },
        {
            "first_name": "A",
            "last_name": "B",
            "username": "new1",
            "email": nurse.email,
            "role": "nurse",
        },
        {
            "first_name": "A",
            "last_name": "B",
            "username": "bad name!",
            "email": "y@example.org",
            "role": "nurse",
        },
        {
            "first_name": "A",
            "last_name": "B",
            "username": "new2",
            "email": "z@example.org",
            "role": "support_agent",
        },
        {
            "first_name": "A",
            "last_name": "B",
            "username": "new3",
            "email": "z@example.org",
            "role": "provider",
        },
        # Digits alone read as a provider's Doctor ID in every event the account writes.
        {
            "first_name": "dorothy",
            "last_name": "Ludwig",
            "username": "496094",
            "email": "d2@example.org",
            "role": "nurse",
        },
        # A line break would become a mail header of its own; an override reorders the name.
        {
            "first_name": "Eve",
            "last_name": "Doe\r\nBcc: x@example.org",
            "username": "new4",
            "email": "e@example.org",
            "role": "nurse",
        },
        {
            "first_name": "Eve\u202e",
            "last_name": "Doe",
            "username": "new5",
            "email": "e5@example.org",
            "role": "nurse",
        },
    ):
        assert client.post("/practice/staff/new/", data).status_code == 400, data
    assert User.objects.count() == before
    page = client.post(
        "/practice/staff/new/",
        {
            "first_name": "Eve",
            "last_name": "Doe\tX",
            "username": "123",
            "email": "e6@example.org",
            "role": "nurse",
        },
    ).content.decode()
    assert "A username cannot be digits alone" in page
    assert "no line breaks, tabs or other control characters" in page
    # Joiners, which some scripts need in names, are accepted.
    assert (
        client.post(
            "/practice/staff/new/",
            {
                "first_name": "\u0645\u06cc\u200c\u0631\u0632\u0627",
                "last_name": "B",
                "username": "mirza",
                "email": "m@example.org",
                "role": "nurse",
            },
        ).status_code
        == 302
    )


def test_only_practice_admins_add_staff(nurse_client):
    response = nurse_client.post(
        "/practice/staff/new/",
        {
            "first_name": "A",
            "last_name": "B",
            "username": "x9",
            "email": "x9@example.org",
            "role": "nurse",
        },
    )
    assert response.status_code == 403


@pytest.mark.parametrize("name", ["B\nSubject: x", "B\u2028y", "Eve\u202eDoe", "A\x00"])
def test_every_way_an_account_is_made_refuses_such_names(practice, name):
    from django.core.exceptions import ValidationError

    from accounts.models import User
    from accounts.services import user_create

    with pytest.raises(ValidationError, match="no line breaks, tabs or other control"):
        user_create(
            username="plain",
            email="p@example.org",
            password="correct-horse-battery-9",
            first_name="Pat",
            last_name=name,
            role=Role.NURSE,
            practice=practice,
            doctor_id=None,
            acting_user=None,
        )
    assert not User.objects.filter(username="plain").exists()


def test_every_way_an_account_is_made_refuses_a_username_of_digits_alone(practice):
    from django.core.exceptions import ValidationError

    from accounts.models import User
    from accounts.services import user_create

    with pytest.raises(ValidationError, match="cannot be digits alone"):
        user_create(
            username="496094",
            email="d@example.org",
            password="correct-horse-battery-9",
            first_name="dorothy",
            last_name="Ludwig",
            role=Role.NURSE,
            practice=practice,
            doctor_id=None,
            acting_user=None,
        )
    assert not User.objects.filter(username="496094").exists()


def test_an_incomplete_new_member_is_answered_before_the_password_is_asked_for(practice):
    """The form is checked first: a missing field is said on the page; a complete form then
    waits for the admin to confirm who they are, and is added once they have."""
    from accounts.models import User
    from tests.accounts.test_pending_action import action_id, confirm

    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    client = Client()
    client.force_login(admin)  # not confirmed
    member = {
        "first_name": "Sara",
        "last_name": "Ng",
        "username": "sng",
        "email": "sng@example.org",
        "role": "scheduler",
    }
    response = client.post("/practice/staff/new/", {**member, "email": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    action = action_id(client.post("/practice/staff/new/", member))
    assert not User.objects.filter(username="sng").exists()
    assert confirm(client, admin, action)["Location"] == "/practice/staff/"
    assert User.objects.filter(username="sng").exists()
