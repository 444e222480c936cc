"""The Django admin changes accounts only through the services that audit them."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from accounts.models import User, UserSession
from accounts.roles import Role
from audit import kinds
from audit.models import AuditEvent
from support_pin.models import AccountPins
from tests.factories import PASSWORD, confirm_identity, make_user, totp_code


@pytest.fixture
def root(db):
    """A platform administrator: a superuser with two-factor, signed in to the admin."""
    user = make_user(Role.PLATFORM_AUDITOR, username="root")
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def admin_client(root):
    """Signed in, and confirmed who they are a moment ago: changes go through at once."""
    client = Client()
    client.force_login(root)
    confirm_identity(client)
    return client


def test_a_change_in_the_admin_waits_for_the_administrator_to_confirm_it_is_them(root, practice):
    """A session taken over cannot give a role, change an address to reset a password
    to, or reset a second factor: each change waits for the password and a code."""
    client = Client()
    client.force_login(root)
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    response = change(client, nurse, email="attacker@evil.example")
    assert response.status_code == 302
    prompt = response["Location"]
    assert prompt.startswith("/account/confirm/?action=")
    # The prompt says what it approves: which change to which row.
    assert "save your change to user “nina” in the admin" in client.get(prompt).content.decode()
    reset = client.post(
        "/admin/accounts/user/", {"action": "reset_two_factor", "_selected_action": [nurse.pk]}
    )
    assert reset["Location"].startswith("/account/confirm/?action=")
    assert User.objects.get(pk=nurse.pk).email != "attacker@evil.example"
    assert not AuditEvent.objects.filter(account=nurse, actor=root).exists()
    assert (  # the prompt says what it approves: which action on how many rows
        "Reset two-factor authentication (lost passkey or phone): 1 user"
        in client.get(reset["Location"]).content.decode()
    )
    # Confirmed, the change kept (the last one asked for) is made, once.
    reset_prompt = reset["Location"]
    done = client.post(
        reset_prompt, {"password": PASSWORD, "method": "app", "code": totp_code(root)}
    )
    assert done.status_code == 302
    assert AuditEvent.objects.filter(kind=kinds.MFA_RESET.code, account=nurse, actor=root).exists()
    # Within the confirmation's few minutes, a change goes through at once.
    assert change(client, User.objects.get(pk=nurse.pk), last_name="Ortiz").status_code == 302
    assert User.objects.get(pk=nurse.pk).last_name == "Ortiz"
    # Signing out of the admin does not ask.
    assert client.post("/admin/logout/")["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def change(admin_client, account: User, **values):
    """Post the account's admin change form as shown, with `values` changed."""
    form = {
        "username": account.username,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "email": account.email,
        "practice": account.practice_id or "",
        "time_zone": account.time_zone,
        "is_active": "on" if account.is_active else "",
        "groups": [group.pk for group in account.groups.all()],
        **values,
    }
    form = {name: value for name, value in form.items() if value not in ("", None)}
    return admin_client.post(f"/admin/accounts/user/{account.pk}/change/", form)


def kinds_of(account: User) -> list[str]:
    return list(
        AuditEvent.objects.filter(account=account).order_by("id").values_list("kind", flat=True)
    )


def test_a_role_and_a_deactivation_made_in_the_admin_are_audited(admin_client, root, practice):
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    Client().force_login(nurse)  # a session of hers, which the deactivation ends
    before = len(kinds_of(nurse))
    admin = Group.objects.get(name=Role.PRACTICE_ADMIN.value)
    response = change(admin_client, nurse, groups=[admin.pk], is_active="")
    assert response.status_code == 302, response.content.decode()[:2000]
    nurse = User.objects.get(pk=nurse.pk)
    assert nurse.roles == {Role.PRACTICE_ADMIN.value} and not nurse.is_active
    assert kinds_of(nurse)[before:] == [kinds.ROLE_CHANGED.code, kinds.ACCOUNT_DEACTIVATED.code]
    role = AuditEvent.objects.get(kind=kinds.ROLE_CHANGED.code, account=nurse)
    assert role.actor == root
    assert role.details == "Role of user Test User changed from nurse to practice_admin"
    assert not UserSession.objects.filter(user=nurse, ended_at__isnull=True).exists()


def test_a_name_or_address_changed_in_the_admin_is_audited_with_what_changed(
    admin_client, root, practice
):
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    assert (
        change(admin_client, nurse, email="nina@clinic.example", last_name="Ortiz").status_code
        == 302
    )
    event = AuditEvent.objects.filter(kind=kinds.PROFILE_UPDATED.code, account=nurse).get()
    assert event.actor == root and event.data == {"fields": "last_name, email"}
    # Saving the form unchanged writes nothing.
    change(admin_client, User.objects.get(pk=nurse.pk))
    assert AuditEvent.objects.filter(kind=kinds.PROFILE_UPDATED.code, account=nurse).count() == 1


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (Role.SUPPORT_AGENT, "belong to no practice"),
        (Role.PROVIDER, "Providers keep their role"),
    ],
)
def test_roles_an_account_cannot_hold_are_refused_and_nothing_changes(
    admin_client, practice, role, message
):
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    before = AuditEvent.objects.count()
    response = change(admin_client, nurse, groups=[Group.objects.get(name=role.value).pk])
    assert response.status_code == 200 and message in response.content.decode()
    assert User.objects.get(pk=nurse.pk).roles == {Role.NURSE.value}
    assert AuditEvent.objects.count() == before


def test_what_has_no_audited_way_in_is_not_changed_in_the_admin(admin_client, practice):
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    change(admin_client, nurse, is_superuser="on", is_staff="on")
    nurse = User.objects.get(pk=nurse.pk)
    assert not nurse.is_superuser and not nurse.is_staff
    assert admin_client.get("/admin/accounts/user/add/").status_code == 403
    assert admin_client.post(f"/admin/accounts/user/{nurse.pk}/delete/").status_code == 403
    profile = nurse.staff_profile
    assert (
        admin_client.post(
            f"/admin/accounts/staffprofile/{profile.pk}/change/", {"home_phone": "555"}
        ).status_code
        == 403
    )


def test_a_pin_lock_is_lifted_only_by_the_audited_action(admin_client, root, provider):
    locked = timezone.now() + timedelta(minutes=30)
    AccountPins.objects.filter(user=provider).update(
        validation_locked_until=locked, validation_blocked_at=timezone.now()
    )
    pins = AccountPins.objects.get(user=provider)
    url = f"/admin/support_pin/accountpins/{pins.pk}/change/"
    # The form is not saved at all, read-only as it is: it would write back the row as
    # it was read, over a PIN rotated or a lock taken meanwhile.
    form = {"validation_locked_until_0": "", "validation_locked_until_1": ""}
    assert admin_client.post(url, form).status_code == 403
    assert AccountPins.objects.get(pk=pins.pk).validation_locked_until == locked
    assert not AuditEvent.objects.filter(kind=kinds.SUPPORT_PIN_VALIDATION_UNBLOCKED.code).exists()
    response = admin_client.post(
        "/admin/support_pin/accountpins/",
        {"action": "unblock_validation", "_selected_action": [pins.pk]},
    )
    assert response.status_code == 302
    assert AccountPins.objects.get(pk=pins.pk).validation_blocked_at is None
    event = AuditEvent.objects.get(kind=kinds.SUPPORT_PIN_VALIDATION_UNBLOCKED.code)
    assert event.actor == root and event.account == provider


@pytest.mark.parametrize(
    "path",
    [
        "axes/accessattempt",
        "axes/accessfailurelog",
        "axes/accesslog",
        "otp_totp/totpdevice",
        "otp_static/staticdevice",
        "auth/group",
    ],
)
def test_sign_in_state_and_roles_are_shown_never_changed_in_the_admin(admin_client, path):
    """An attempt that locks an account, an authenticator, a role's group: audited elsewhere.
    Nor does a library's own action run there (axes' clean-up deletes attempts)."""
    from django.apps import apps
    from django.contrib import admin

    assert admin_client.get(f"/admin/{path}/").status_code == 200
    assert admin_client.get(f"/admin/{path}/add/").status_code == 403
    model_admin = admin.site.get_model_admin(apps.get_model(path.replace("/", ".")))
    request = admin_client.get(f"/admin/{path}/").wsgi_request
    assert model_admin.get_actions(request) == {}


def test_the_admins_service_checks_who_acts_what_changes_and_the_roles(root, practice, nurse):
    """Whatever form calls it: only a superuser, only the editable fields, only roles the
    account can hold."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from accounts.services import user_admin_update

    common = {"account": nurse, "active": True, "ip": None}
    # A practice admin manages the nurse on the Practice Staff page, never through this.
    pam = make_user(Role.PRACTICE_ADMIN, practice=practice, username="pam")
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied, match="only platform administrators"):
        user_admin_update(changes={}, roles=["billing"], acting_user=pam, **common)
    with pytest.raises(PermissionDenied, match="is_superuser"):
        user_admin_update(changes={"is_superuser": True}, roles=[], acting_user=root, **common)
    with pytest.raises(ValidationError, match="belong to no practice"):
        user_admin_update(changes={}, roles=[Role.SUPPORT_AGENT.value], acting_user=root, **common)
    with pytest.raises(ValidationError, match="need a practice"):
        user_admin_update(
            changes={"practice": None}, roles=[Role.NURSE.value], acting_user=root, **common
        )
    nurse = User.objects.get(pk=nurse.pk)
    assert not nurse.is_superuser and nurse.roles == {Role.NURSE.value}
    assert nurse.practice_id == practice.pk
    assert AuditEvent.objects.count() == before


def practice_form(practice, **values) -> dict:
    form = {"name": practice.name, "group_id": practice.group_id, "country": practice.country}
    return {**form, **values}


def test_a_practice_added_and_changed_in_the_admin_is_audited_in_its_own_log(admin_client, root):
    from accounts.models import Practice

    response = admin_client.post(
        "/admin/accounts/practice/add/",
        {"name": "Lakeside Clinic", "group_id": 424242, "country": "CA"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    practice = Practice.objects.get(group_id=424242)
    created = AuditEvent.objects.get(kind=kinds.PRACTICE_CREATED.code)
    assert created.actor == root and created.practice_id == practice.pk
    assert created.details == "Practice Lakeside Clinic created with Group ID 424242"

    url = f"/admin/accounts/practice/{practice.pk}/change/"
    form = practice_form(practice, name="Lakeside Family Clinic", group_id=424243)
    assert admin_client.post(url, form).status_code == 302
    practice = Practice.objects.get(pk=practice.pk)
    assert (practice.name, practice.group_id) == ("Lakeside Family Clinic", 424243)
    updated = AuditEvent.objects.get(kind=kinds.PRACTICE_UPDATED.code)
    assert updated.actor == root and updated.practice_id == practice.pk
    assert updated.details == (
        "Practice Lakeside Family Clinic updated: name changed from Lakeside Clinic to "
        "Lakeside Family Clinic; Group ID changed from 424242 to 424243"
    )
    assert updated.data == {"fields": "name, group_id"}
    # Saved unchanged: nothing to record.
    assert admin_client.post(url, practice_form(practice)).status_code == 302
    assert AuditEvent.objects.filter(kind=kinds.PRACTICE_UPDATED.code).count() == 1
    # A practice is never deleted: its members, its chain and its log name it.
    assert admin_client.post(f"/admin/accounts/practice/{practice.pk}/delete/").status_code == 403
    assert Practice.objects.filter(pk=practice.pk).exists()


def test_a_practice_change_that_is_refused_changes_nothing(admin_client, practice):
    from tests.factories import make_practice

    taken = make_practice()
    before = AuditEvent.objects.count()
    url = f"/admin/accounts/practice/{practice.pk}/change/"
    response = admin_client.post(url, practice_form(practice, group_id=taken.group_id))
    assert response.status_code == 200
    assert "Practice with this Group ID already exists." in response.content.decode()
    assert AuditEvent.objects.count() == before
    assert type(practice).objects.get(pk=practice.pk).group_id == practice.group_id


def test_the_specialty_list_is_added_to_and_renamed_audited_never_deleted(admin_client, root):
    from accounts.models import Specialty

    assert (
        admin_client.post(
            "/admin/accounts/specialty/add/", {"name": "Wilderness Medicine"}
        ).status_code
        == 302
    )
    specialty = Specialty.objects.get(name="Wilderness Medicine")
    added = AuditEvent.objects.get(kind=kinds.SPECIALTY_ADDED.code)
    assert added.actor == root and added.practice_id is None
    assert added.details == "Specialty Wilderness Medicine added"
    url = f"/admin/accounts/specialty/{specialty.pk}/change/"
    assert admin_client.post(url, {"name": "Wilderness and Expedition Medicine"}).status_code == 302
    renamed = AuditEvent.objects.get(kind=kinds.SPECIALTY_RENAMED.code)
    assert (
        renamed.details
        == "Specialty Wilderness Medicine renamed to Wilderness and Expedition Medicine"
    )
    assert admin_client.post(f"/admin/accounts/specialty/{specialty.pk}/delete/").status_code == 403
    assert Specialty.objects.filter(pk=specialty.pk).exists()


def test_practice_and_specialty_services_are_for_platform_administrators_only(practice):
    from django.core.exceptions import PermissionDenied

    from accounts.models import Specialty
    from accounts.services import (
        practice_create,
        practice_update,
        specialty_add,
        specialty_rename,
    )

    # A practice admin runs the practice's staff, not the platform's configuration.
    pam = make_user(Role.PRACTICE_ADMIN, practice=practice, username="pam")
    cardiology = Specialty.objects.get(name="Cardiology")
    before = AuditEvent.objects.count()
    refused = [
        lambda: practice_create(name="Mine", group_id=777777, acting_user=pam),
        lambda: practice_update(
            practice=practice, changes={"name": "Mine"}, acting_user=pam, ip=None
        ),
        lambda: specialty_add(name="Mine", acting_user=pam, ip=None),
        lambda: specialty_rename(specialty=cardiology, name="Mine", acting_user=pam, ip=None),
    ]
    for call in refused:
        with pytest.raises(PermissionDenied, match="only platform administrators"):
            call()
    assert AuditEvent.objects.count() == before
    assert Specialty.objects.get(pk=cardiology.pk).name == "Cardiology"
    assert not Specialty.objects.filter(name="Mine").exists()
    assert type(practice).objects.get(pk=practice.pk).name == practice.name
    # Nor does a platform administrator change what the admin does not offer.
    root = make_user(Role.PLATFORM_AUDITOR, username="root")
    User.objects.filter(pk=root.pk).update(is_superuser=True)
    with pytest.raises(PermissionDenied, match="not changed here: id"):
        practice_update(
            practice=practice,
            changes={"id": 999},
            acting_user=User.objects.get(pk=root.pk),
            ip=None,
        )


def test_a_rename_in_the_admin_keeps_the_sign_in_lock_with_the_account(admin_client, practice):
    from accounts.lockout import sign_in_locked_until
    from tests.accounts.test_lockout import fail

    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    fail(Client(), 5, username="nina")
    assert sign_in_locked_until(username="nina", ip="192.0.2.10") is not None
    assert change(admin_client, nurse, username="nina.ortiz").status_code == 302
    # The lock went with the account to its new name: nothing unlocked it unrecorded.
    assert sign_in_locked_until(username="nina.ortiz", ip="192.0.2.10") is not None
    assert not AuditEvent.objects.filter(kind=kinds.SIGN_IN_UNLOCKED.code).exists()


def test_a_move_to_another_practice_is_in_both_practices_logs_and_ends_the_sessions(
    admin_client, root, practice, other_practice
):
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    Client().force_login(nurse)
    assert change(admin_client, nurse, practice=other_practice.pk).status_code == 302
    moved = AuditEvent.objects.filter(kind=kinds.ACCOUNT_PRACTICE_CHANGED.code, account=nurse)
    # Each practice's compliance officers read it in their own practice's log.
    assert sorted(moved.values_list("practice_id", flat=True)) == sorted(
        [practice.pk, other_practice.pk]
    )
    assert {event.details for event in moved} == {
        f"User Test User moved from practice {practice.name} to practice {other_practice.name}"
    }
    assert not UserSession.objects.filter(user=nurse, ended_at__isnull=True).exists()
    # A practice is not a profile field: no "profile updated" beside it.
    assert not AuditEvent.objects.filter(kind=kinds.PROFILE_UPDATED.code, account=nurse).exists()


def test_a_practice_role_cannot_be_moved_out_of_every_practice(admin_client, practice):
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    before = AuditEvent.objects.count()
    response = change(admin_client, nurse, practice="")
    assert response.status_code == 200
    assert "Practice roles need a practice" in response.content.decode()
    assert User.objects.get(pk=nurse.pk).practice_id == practice.pk
    assert AuditEvent.objects.count() == before


def test_an_authenticators_secret_has_no_page_in_the_admin(admin_client, root):
    """django-otp's own "config" and QR code pages of a device would show its secret."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=root).first()
    assert device is not None
    base = f"/admin/otp_totp/totpdevice/{device.pk}/"
    assert admin_client.get(base + "change/").status_code == 200
    for page in ("config/", "qrcode/"):
        # Read as the id of a device (`1/config`), which there is none of.
        response = admin_client.get(base + page, follow=True)
        assert response.status_code in (200, 404)
        assert response.redirect_chain[-1][0] == "/admin/"
        assert "otpauth" not in response.content.decode()


def test_a_change_refused_after_the_confirmation_is_put_right_on_its_own_page(root, practice):
    """The replayed form, shown at the prompt's address, posts its corrections back to
    the admin page, not to the prompt."""
    import re

    from accounts.models import Practice

    client = Client()
    client.force_login(root)
    taken = {"name": "Lakeside Clinic", "group_id": practice.group_id, "country": "US"}
    prompt = client.post("/admin/accounts/practice/add/", taken)["Location"]
    page = client.post(prompt, {"password": PASSWORD, "method": "app", "code": totp_code(root)})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Practice with this Group ID already exists." in html
    (action,) = re.findall(
        r'<form[^>]*id="practice_form"[^>]*action="([^"]+)"', html
    ) or re.findall(r'<form[^>]*action="([^"]+)"[^>]*id="practice_form"', html)
    assert action == "/admin/accounts/practice/add/"
    assert client.post(action, {**taken, "group_id": 424299}).status_code == 302
    assert Practice.objects.filter(group_id=424299, name="Lakeside Clinic").exists()


def test_every_admin_page_asks_before_any_change(root):
    """Whatever model: a save, an addition or an action waits for the confirmation."""
    from django.contrib import admin
    from django.test import RequestFactory

    client = Client()
    client.force_login(root)
    request = RequestFactory().get("/admin/")
    request.user = root
    asked = []
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        posts = [base]
        if model_admin.has_add_permission(request):
            posts.append(base + "add/")
        for url in posts:
            response = client.post(url, {"action": "delete_selected", "_selected_action": [1]})
            asked.append((url, response.status_code, response.get("Location", "")))
    assert asked and all(
        status == 302 and location.startswith("/account/confirm/?action=")
        for _url, status, location in asked
    ), asked


def test_the_prompt_says_what_runs_and_runs_only_what_it_says(root, practice):
    """A stolen session posts an action dressed as another (several `action` values, one
    picked by `index`), over "all" rows (`select_across`), and sends the administrator
    the prompt's link: the prompt names the action that runs, on the rows ticked only."""
    victims = [make_user(Role.NURSE, practice=practice, username=f"v{i}") for i in range(3)]
    attacker = Client()
    attacker.force_login(root)
    response = attacker.post(
        f"/admin/accounts/user/?practice__id__exact={practice.pk}",
        {
            "action": ["reset_two_factor", "unlock_sign_in"],
            "index": "0",
            "select_across": "1",
            "_selected_action": [victims[0].pk],
        },
    )
    prompt = response["Location"]
    page = attacker.get(prompt).content.decode()
    assert "Reset two-factor authentication (lost passkey or phone): 1 user" in page
    assert "Unlock sign-in" not in page
    attacker.post(prompt, {"password": PASSWORD, "method": "app", "code": totp_code(root)})
    reset = set(
        AuditEvent.objects.filter(kind=kinds.MFA_RESET.code).values_list(
            "account__username", flat=True
        )
    )
    assert reset == {"v0"}
    # An action the list does not have is named as nothing, and nothing runs.
    confirm_identity(attacker)
    unknown = attacker.post(
        "/admin/accounts/user/",
        {"action": ["View the user list (no change)"], "_selected_action": [victims[1].pk]},
    )
    assert unknown.status_code == 302
    assert AuditEvent.objects.filter(kind=kinds.MFA_RESET.code).count() == 1


def test_save_as_new_is_not_a_way_to_add_under_a_change_label(admin_client, practice):
    from accounts.models import Practice

    before = Practice.objects.count()
    url = f"/admin/accounts/practice/{practice.pk}/change/"
    form = {**practice_form(practice, name="Copy Clinic", group_id=424288), "_saveasnew": "1"}
    assert admin_client.post(url, form).status_code == 302
    assert Practice.objects.count() == before  # the practice itself was changed, as labelled
    assert Practice.objects.get(pk=practice.pk).name == "Copy Clinic"
