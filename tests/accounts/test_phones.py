"""Phone numbers are read and shown in the national format of the practice's country."""

from django.test import Client

from accounts.models import Practice, ProviderProfile, StaffProfile
from accounts.roles import Role
from break_glass.services import break_glass_identity, break_glass_open
from tests.factories import PASSWORD, confirm_identity, make_practice, make_user


def test_a_stored_number_is_shown_back_in_national_format(provider_client, provider):
    ProviderProfile.objects.filter(user=provider).update(
        home_phone="+12025550143", cell_phone="+442079460958"
    )
    page = provider_client.get("/account/settings/").content.decode()
    assert 'value="(202) 555-0143"' in page
    assert 'value="+44 20 7946 0958"' in page  # another country's number: international
    assert "+12025550143" not in page


def test_staff_see_their_numbers_in_national_format(nurse_client, nurse):
    StaffProfile.objects.filter(user=nurse).update(home_phone="+12025550143")
    page = nurse_client.get("/account/staff/").content.decode()
    assert 'value="(202) 555-0143"' in page and "+12025550143" not in page


def test_a_practice_in_another_country_reads_and_shows_its_own_format(db):
    practice = make_practice("Camden Surgery")
    Practice.objects.filter(pk=practice.pk).update(country="GB")
    doctor = make_user(Role.PROVIDER, practice=Practice.objects.get(pk=practice.pk))
    client = Client()
    client.force_login(doctor)
    data = {"time_zone": "Europe/London", "home_phone": "020 7946 0958", "cell_phone": ""}
    assert client.post("/account/settings/", {**data, "password": PASSWORD}).status_code == 302
    assert str(ProviderProfile.objects.get(user=doctor).home_phone) == "+442079460958"
    page = client.get("/account/settings/").content.decode()
    assert 'value="020 7946 0958"' in page


def test_break_glass_shows_the_numbers_in_national_format(agent, provider):
    ProviderProfile.objects.filter(user=provider).update(office_phone="+12025550143")
    provider = type(provider).objects.get(pk=provider.pk)
    reason = "Caller lost her phone and cannot sign in to read her Support PIN; verified."
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=reason, minutes=15, ip=None
    )
    identity = break_glass_identity(grant=grant, acting_user=agent, ip=None)
    assert identity.phones == [("Office phone", "(202) 555-0143")]
    client = Client()
    client.force_login(agent)
    confirm_identity(client)
    assert (
        "(202) 555-0143" in client.get(f"/support/break-glass/grant/{grant.pk}/").content.decode()
    )


def test_phone_display_leaves_what_it_cannot_read_alone():
    from accounts.phones import phone_display

    assert phone_display("", country="US") == ""
    assert phone_display(None, country="US") == ""
    assert phone_display("+12025550143", country="US") == "(202) 555-0143"
    assert phone_display("+12025550143", country="GB") == "+1 202-555-0143"
