import re

import pytest
from django.contrib.auth import SESSION_KEY

from accounts.models import ProviderProfile, Specialty, StaffProfile
from audit.models import AuditEvent
from tests.factories import PASSWORD, streamed
from tests.images import image_bytes, upload

SETTINGS = "/account/settings/"
STAFF = "/account/staff/"


def profile_post(**overrides):
    data = {
        "specialties": [],
        "job_title": "",
        "time_zone": "America/New_York",
        "salutation": "",
        "suffix": "",
        "website": "",
        "home_phone": "",
        "office_phone": "",
        "cell_phone": "",
    }
    data.update(overrides)
    return data


# Sign-in and sign-out


def test_sign_in_sends_a_provider_to_account_settings(client, provider, password):
    response = client.post("/accounts/login/", {"username": "dorothy", "password": password})
    assert response.status_code == 302
    assert client.get(response["Location"]).url == SETTINGS


def test_sign_in_sends_staff_to_staff_account_information(client, nurse, password):
    client.post("/accounts/login/", {"username": "dori", "password": password})
    assert client.get("/").url == STAFF


def test_sign_in_sends_a_support_agent_to_the_console(client, agent):
    client.force_login(agent)
    assert client.get("/").url == "/support/validate/"


def test_wrong_password_shows_a_clear_error(client, provider):
    response = client.post("/accounts/login/", {"username": "dorothy", "password": "nope"})
    assert response.status_code == 200
    assert "The username or password is not correct." in response.content.decode()
    assert SESSION_KEY not in client.session


def test_session_key_changes_at_sign_in(client, provider, password):
    client.get("/accounts/login/")
    client.cookies["sessionid"] = "attacker-chosen-session-id"
    client.post("/accounts/login/", {"username": "dorothy", "password": password})
    assert client.cookies["sessionid"].value != "attacker-chosen-session-id"


def test_sign_out_is_post_only_and_ends_the_session(provider_client):
    assert provider_client.get("/accounts/logout/").status_code == 405
    provider_client.post("/accounts/logout/")
    assert provider_client.get(SETTINGS).status_code == 302


def test_pages_require_sign_in(client, db):
    for url in (SETTINGS, STAFF, "/account/password/", "/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


# Account Settings (provider)


def test_account_settings_shows_the_seed_fields(provider_client):
    page = provider_client.get(SETTINGS).content.decode()
    for text in (
        "Doctor ID",
        "496094",
        "Practice Group ID",
        "If you need to change your name, please contact",
        "Specialty",
        "Job Title",
        "Timezone",
        "Salutation",
        "Suffix",
        "Website",
        "Home Phone",
        "Office Phone",
        "Cell Phone",
        "Change Password",
        "Current Plan",
        "Employee",
        "Profile Picture",
        "Will be attached to patient emails",
        "Practice Business Logo",
        "Will be attached to emails &amp; official forms",
        "Display logo on faxes",
    ):
        assert text in page, text


def test_names_and_doctor_id_cannot_be_changed_from_the_form(provider_client, provider):
    provider_client.post(
        SETTINGS,
        profile_post(first_name="Mallory", last_name="X", doctor_id="1", job_title="Dr"),
    )
    provider.refresh_from_db()
    assert (provider.first_name, provider.last_name) == ("dorothy", "Ludwig")
    assert provider.provider_profile.doctor_id == 496094


def test_valid_profile_is_saved(provider_client, provider):
    cardiology = Specialty.objects.get(name="Cardiology")
    response = provider_client.post(
        SETTINGS,
        profile_post(
            specialties=[cardiology.pk, Specialty.objects.get(name="Pediatrics").pk],
            job_title="Medical Director",
            time_zone="America/Los_Angeles",
            salutation="Dr.",
            suffix="MD",
            website="ludwig-family.example",
            home_phone="(202) 555-0143",
            cell_phone="+1 415 555 2671",
            display_logo_on_faxes="on",
            password=PASSWORD,  # new phone numbers: the password too
        ),
    )
    assert response.status_code == 302
    profile = ProviderProfile.objects.get(user=provider)
    assert profile.job_title == "Medical Director"
    assert profile.website == "https://ludwig-family.example"
    assert str(profile.home_phone) == "+12025550143"
    assert profile.display_logo_on_faxes is True
    assert set(profile.specialties.values_list("name", flat=True)) == {"Cardiology", "Pediatrics"}
    provider.refresh_from_db()
    assert provider.time_zone == "America/Los_Angeles"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("home_phone", "12", "Enter a valid phone number"),
        ("office_phone", "=HYPERLINK(1)", "Enter a valid phone number"),
        ("cell_phone", "555-CALL-NOW-123456789", "Enter a valid phone number"),
        ("website", "javascript:alert(1)", "Enter a web address"),
        ("website", "ftp://files.example.org", "Enter a web address"),
        ("time_zone", "Mars/Olympus_Mons", "Choose a time zone from the list"),
        ("salutation", "Lord", "Select a valid choice"),
        ("specialties", ["999999"], "Select a valid choice"),
        ("suffix", "x" * 21, "at most 20 characters"),
    ],
)
def test_bad_input_shows_field_error_and_saves_nothing(
    provider_client, provider, field, value, message
):
    response = provider_client.post(SETTINGS, profile_post(job_title="Changed", **{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Nothing was saved" in response.content.decode()
    profile = ProviderProfile.objects.get(user=provider)
    assert profile.job_title == ""
    provider.refresh_from_db()
    assert provider.time_zone == "America/New_York"


@pytest.mark.parametrize("website", ["javascript:alert(1)", "ftp://files.example.org", "http://"])
def test_a_bad_website_is_reported_once(provider_client, website):
    response = provider_client.post(SETTINGS, profile_post(website=website))
    assert response.status_code == 400
    assert response.content.decode().count("Enter a web address such as") == 1


def test_uploaded_picture_is_stored_under_a_random_name(provider_client, provider, settings):
    provider_client.post(
        SETTINGS, profile_post(profile_picture=upload("../../etc/passwd.png", image_bytes()))
    )
    picture = ProviderProfile.objects.get(user=provider).profile_picture
    assert picture.name.startswith("profile-pictures/")
    assert "passwd" not in picture.name
    assert picture.name.endswith(".png")
    assert (settings.MEDIA_ROOT / picture.name).is_file()


def test_fake_image_upload_is_refused_and_nothing_is_saved(provider_client, provider, settings):
    response = provider_client.post(
        SETTINGS,
        profile_post(job_title="Changed", business_logo=upload("logo.png", b"<?php evil(); ?>")),
    )
    assert response.status_code == 400
    assert "not a valid PNG or JPEG image" in response.content.decode()
    profile = ProviderProfile.objects.get(user=provider)
    assert not profile.business_logo
    assert profile.job_title == ""
    assert not (settings.MEDIA_ROOT / "business-logos").exists()


def test_replacing_and_clearing_a_picture_removes_the_old_file(
    provider_client, provider, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        provider_client.post(SETTINGS, profile_post(profile_picture=upload("a.png", image_bytes())))
    first = ProviderProfile.objects.get(user=provider).profile_picture.name
    with django_capture_on_commit_callbacks(execute=True):
        provider_client.post(SETTINGS, profile_post(profile_picture=upload("b.png", image_bytes())))
    second = ProviderProfile.objects.get(user=provider).profile_picture.name
    assert first != second
    assert not (settings.MEDIA_ROOT / first).exists()
    with django_capture_on_commit_callbacks(execute=True):
        provider_client.post(SETTINGS, profile_post(**{"profile_picture-clear": "on"}))
    assert not ProviderProfile.objects.get(user=provider).profile_picture
    assert not (settings.MEDIA_ROOT / second).exists()


def test_a_strip_of_an_image_is_refused_and_nothing_is_saved(provider_client, provider, settings):
    strip = upload("strip.png", image_bytes("PNG", size=(20000, 1)))
    response = provider_client.post(
        SETTINGS, profile_post(job_title="Changed", profile_picture=strip)
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "The image is 20000 x 1 pixels: neither side may be more than 10 times" in page
    profile = ProviderProfile.objects.get(user=provider)
    assert not profile.profile_picture and profile.job_title == ""
    assert not (settings.MEDIA_ROOT / "profile-pictures").exists()


def test_a_replaced_picture_has_a_new_url_and_the_old_one_never_serves_it(provider_client):
    def picture_url() -> str:
        page = provider_client.get(SETTINGS).content.decode()
        return re.search(r'<img src="([^"]+)" alt="Current profile picture"', page).group(1)

    red, blue = image_bytes("PNG", (8, 8)), _blue_png()
    provider_client.post(SETTINGS, profile_post(profile_picture=upload("red.png", red)))
    old = picture_url()
    first = streamed(provider_client.get(old))
    provider_client.post(SETTINGS, profile_post(profile_picture=upload("blue.png", blue)))
    new = picture_url()
    assert new != old
    assert provider_client.get(old).status_code == 404  # never the new picture
    assert streamed(provider_client.get(new)) != first
    provider_client.post(SETTINGS, profile_post(**{"profile_picture-clear": "on"}))
    assert provider_client.get(new).status_code == 404


def _blue_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (8, 8), (30, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_are_served_only_to_the_practice(
    client, provider_client, provider, nurse, other_provider
):
    provider_client.post(SETTINGS, profile_post(profile_picture=upload("a.png", image_bytes())))
    url = provider_client.get(SETTINGS).context["image_urls"]["picture"]
    assert url.startswith(f"/account/images/{provider.pk}/picture/")

    response = provider_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "private" in response["Cache-Control"]
    picture = streamed(response)
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")

    client.force_login(nurse)
    response = client.get(url)
    assert response.status_code == 200 and streamed(response) == picture
    client.force_login(other_provider)
    assert client.get(url).status_code == 404
    assert client.get(f"/account/images/{provider.pk}/../../secret/").status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


def test_provider_cannot_open_staff_page(provider_client):
    assert provider_client.get(STAFF).status_code == 403


def test_nurse_cannot_open_provider_settings(nurse_client):
    assert nurse_client.get(SETTINGS).status_code == 403


# Staff Account Information


def test_staff_page_shows_the_seed_fields(nurse_client):
    page = nurse_client.get(STAFF).content.decode()
    for text in (
        "Staff Account Information",
        "First name",
        "Dori",
        "Last name",
        "Email address",
        "Username",
        "dori",
        "Home phone",
        "Cell phone",
        "Save staff account",
    ):
        assert text in page, text


def test_staff_account_saves(nurse_client, nurse, password):
    phones = {"home_phone": "202-555-0143", "cell_phone": ""}
    response = nurse_client.post(STAFF, {"email": nurse.email, "time_zone": "America/Chicago"})
    assert response.status_code == 302  # nothing support verifies a caller by: no password
    response = nurse_client.post(STAFF, {"email": nurse.email, **phones})
    assert response.status_code == 400
    assert (
        "Enter your password to change the email address or a phone number."
        in response.content.decode()
    )
    assert not StaffProfile.objects.get(user=nurse).home_phone
    response = nurse_client.post(STAFF, {"email": nurse.email, "password": password, **phones})
    assert response.status_code == 302
    assert str(StaffProfile.objects.get(user=nurse).home_phone) == "+12025550143"
    response = nurse_client.post(STAFF, {"email": "dori@clinic.example", **phones})
    assert response.status_code == 400
    assert "Enter your password to change the email address" in response.content.decode()
    response = nurse_client.post(
        STAFF, {"email": "dori@clinic.example", "password": "not-mine", **phones}
    )
    assert response.status_code == 400
    nurse.refresh_from_db()
    assert nurse.email == "dori@example.org"
    response = nurse_client.post(
        STAFF, {"email": "dori@clinic.example", "password": password, **phones}
    )
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.email == "dori@clinic.example"


def test_staff_account_bad_input_saves_nothing(nurse_client, nurse, provider, password):
    for data, message in (
        ({"email": "not-an-email", "home_phone": ""}, "Enter a valid email address"),
        ({"email": provider.email.upper(), "home_phone": ""}, "already uses this email"),
        ({"email": "ok@example.org", "home_phone": "abc"}, "Enter a valid phone number"),
    ):
        response = nurse_client.post(STAFF, {**data, "password": password})
        assert response.status_code == 400
        assert message in response.content.decode()
    nurse.refresh_from_db()
    assert nurse.email == "dori@example.org"


# Change Password


def test_change_password_requires_the_current_one(provider_client, provider, password):
    response = provider_client.post(
        "/account/password/",
        {
            "password": "wrong",
            "new_password1": "N3w-Longer-Pass!",
            "new_password2": "N3w-Longer-Pass!",
        },
    )
    assert response.status_code == 400
    assert "The password is not correct." in response.content.decode()
    provider.refresh_from_db()
    assert provider.check_password(password)
    assert AuditEvent.objects.filter(
        details="Password change refused for user dorothy Ludwig: wrong current password"
    ).exists()


def test_change_password_enforces_the_policy(provider_client, provider, password):
    response = provider_client.post(
        "/account/password/",
        {"password": password, "new_password1": "short", "new_password2": "short"},
    )
    assert "at least 12 characters" in response.content.decode()
    provider.refresh_from_db()
    assert provider.check_password(password)


def test_change_password_keeps_the_user_signed_in(provider_client, provider, password):
    response = provider_client.post(
        "/account/password/",
        {
            "password": password,
            "new_password1": "N3w-Longer-Pass!",
            "new_password2": "N3w-Longer-Pass!",
        },
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.check_password("N3w-Longer-Pass!")
    assert provider_client.get(SETTINGS).status_code == 200


def test_account_pages_are_not_cached(provider_client):
    assert "no-cache" in provider_client.get(SETTINGS)["Cache-Control"]


def test_account_pages_refuse_post_without_csrf(provider, password):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(provider)
    assert strict.post(SETTINGS, profile_post(job_title="x")).status_code == 403
    assert ProviderProfile.objects.get(user=provider).job_title == ""


def test_a_picture_sent_with_an_unconfirmed_phone_change_is_asked_for_again(
    provider_client, provider
):
    from pathlib import Path

    from django.conf import settings

    from tests.images import image_bytes, upload

    data = profile_post(cell_phone="(202) 555-0199")
    data["profile_picture"] = upload("me.png", image_bytes("PNG"))
    response = provider_client.post(SETTINGS, data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter your password to change a phone number." in page
    assert "Choose the picture or logo again" in page
    assert not ProviderProfile.objects.get(user=provider).profile_picture
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []
