import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from accounts.models import ProviderProfile, StaffProfile, User
from accounts.roles import Role
from accounts.services import provider_profile_update, staff_profile_update, user_create
from tests.factories import make_user


def _create(**overrides):
    fields = {
        "username": "newuser",
        "email": "new@example.org",
        "password": "a-long-enough-password",
        "first_name": "New",
        "last_name": "User",
        "role": Role.NURSE,
        "practice": None,
        "acting_user": None,
    }
    fields.update(overrides)
    return user_create(**fields)


def test_provider_gets_account_settings_profile_and_role(practice):
    user = _create(role=Role.PROVIDER, practice=practice, doctor_id=123456)
    assert user.provider_profile.doctor_id == 123456
    assert not StaffProfile.objects.filter(user=user).exists()
    assert user.roles == {"provider"}
    assert user.check_password("a-long-enough-password")
    assert user.time_zone == "America/New_York"


def test_staff_gets_staff_profile(practice):
    user = _create(role=Role.SCHEDULER, practice=practice)
    assert StaffProfile.objects.filter(user=user).exists()
    assert not ProviderProfile.objects.filter(user=user).exists()
    assert user.roles == {"scheduler"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": Role.NURSE}, "must belong to a practice"),
        ({"role": Role.SUPPORT_AGENT, "practice": "P"}, "does not belong to a practice"),
        ({"role": Role.PROVIDER, "practice": "P"}, "Doctor ID"),
        ({"role": Role.NURSE, "practice": "P", "doctor_id": 5}, "Doctor ID"),
        ({"role": Role.NURSE, "practice": "P", "time_zone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_invalid_accounts_are_refused_and_nothing_is_created(practice, overrides, message):
    if overrides.get("practice") == "P":
        overrides["practice"] = practice
    before = User.objects.count()
    with pytest.raises(ValidationError, match=message):
        _create(**overrides)
    assert User.objects.count() == before


def test_email_is_unique_ignoring_case(practice):
    _create(role=Role.NURSE, practice=practice, email="Same@Example.org")
    with pytest.raises(ValidationError, match="already uses this email"):
        _create(role=Role.NURSE, practice=practice, username="other", email="same@example.org")


def test_provider_profile_update_applies_fields_and_time_zone(provider):
    profile = provider.provider_profile
    provider_profile_update(
        profile=profile,
        acting_user=provider,
        ip=None,
        changes={"job_title": "Medical Director", "time_zone": "America/Chicago", "suffix": "MD"},
    )
    profile.refresh_from_db()
    provider.refresh_from_db()
    assert (profile.job_title, profile.suffix) == ("Medical Director", "MD")
    assert provider.time_zone == "America/Chicago"


def test_provider_profile_update_rejects_bad_values_and_changes_nothing(provider):
    profile = provider.provider_profile
    with pytest.raises(ValidationError):
        provider_profile_update(
            profile=profile,
            acting_user=provider,
            ip=None,
            changes={"job_title": "Changed", "salutation": "Lord"},
        )
    profile.refresh_from_db()
    assert profile.job_title == ""


def test_staff_profile_update(nurse, provider):
    staff_profile_update(
        account=nurse,
        acting_user=nurse,
        ip=None,
        changes={"email": "dori@new.example", "cell_phone": ""},
    )
    nurse.refresh_from_db()
    assert nurse.email == "dori@new.example"
    with pytest.raises(ValidationError, match="already uses this email"):
        staff_profile_update(
            account=nurse, acting_user=nurse, ip=None, changes={"email": provider.email.upper()}
        )


def test_role_groups_match_the_roles_the_code_knows(db):
    migrated = set(Group.objects.values_list("name", flat=True))
    assert {role.value for role in Role} <= migrated


def test_role_values_are_unique():
    values = [role.value for role in Role]
    assert len(values) == len(set(values))


def test_platform_roles_have_no_practice(db):
    agent = make_user(Role.SUPPORT_AGENT)
    assert agent.practice is None
    assert hasattr(agent, "staff_profile")


def test_usernames_are_unique_whatever_their_case_in_the_database(nurse, practice):
    from django.db import IntegrityError, transaction

    with pytest.raises(ValidationError, match="That username is taken"):
        _create(username="DORI", email="other@example.org", practice=practice)
    with transaction.atomic(), pytest.raises(IntegrityError):  # not only the service's check
        User.objects.create(username="Dori", email="third@example.org")
    assert User.objects.filter(username__iexact="dori").count() == 1


def test_a_picture_stored_for_a_change_that_fails_is_deleted_again(provider, settings, monkeypatch):
    """Storage writes at once; a change refused afterwards (here, its event) leaves no file."""
    from pathlib import Path

    from accounts.images import clean_image_upload
    from tests.images import image_bytes, upload

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("accounts.services.audit_event_record", broken)
    picture = clean_image_upload(upload("me.png", image_bytes("PNG")))
    with pytest.raises(RuntimeError):
        provider_profile_update(
            profile=provider.provider_profile,
            acting_user=provider,
            ip=None,
            changes={"profile_picture": picture},
        )
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []
    provider.provider_profile.refresh_from_db()
    assert not provider.provider_profile.profile_picture
