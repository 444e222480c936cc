"""Every page shows times in the viewer's own time zone, with its abbreviation."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from accounts.validators import time_zone_named, time_zone_names
from break_glass.services import break_glass_open
from tests.factories import PASSWORD, make_user

# 21:06:19 UTC on 03/18/2024 is 05:06 PM in New York (EDT) and 02:06 PM in Los Angeles (PDT).
MOMENT = datetime(2024, 3, 18, 21, 6, 19, tzinfo=UTC)
REASON = "Caller lost her phone and cannot sign in to read her Support PIN; verified by callback."


@pytest.fixture
def clock():
    with time_machine.travel(MOMENT, tick=False) as traveller:
        yield traveller


def signed_in(user: User) -> Client:
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36")
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_the_session_list_is_in_the_viewers_zone(clock, provider):
    page = signed_in(provider).get("/account/security/").content.decode()
    assert "03/18/2024 05:06 PM EDT" in page
    assert "UTC" not in page


def test_the_break_glass_review_is_in_the_viewers_zone(clock, agent, provider, practice):
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice)
    User.objects.filter(pk=officer.pk).update(time_zone="America/Los_Angeles")
    break_glass_open(acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None)
    client = Client()
    client.force_login(officer)
    page = client.get("/audit/break-glass/").content.decode()
    assert "03/18/2024 02:06 PM PDT" in page  # opened
    assert "03/18/2024 02:21 PM PDT" in page  # until
    assert "UTC" not in page


def test_the_outbox_is_in_the_viewers_zone(clock, provider, django_capture_on_commit_callbacks):
    from outbox.services import mail_enqueue

    auditor = make_user(Role.PLATFORM_AUDITOR)
    User.objects.filter(pk=auditor.pk).update(time_zone="Europe/Berlin")
    with django_capture_on_commit_callbacks(execute=True):
        mail_enqueue(subject="Hello", body="Hello", recipients=["someone@example.org"])
    client = Client()
    client.force_login(auditor)
    page = client.get("/audit/outbox/").content.decode()
    assert "03/18/2024 10:06:19 PM CET" in page
    assert "UTC" not in page


def test_staff_choose_their_time_zone_and_pages_follow_it(clock, nurse):
    client = signed_in(nurse)
    page = client.get("/account/staff/").content.decode()
    assert 'name="time_zone"' in page
    data = {"email": nurse.email, "home_phone": "", "cell_phone": ""}
    response = client.post("/account/staff/", {**data, "time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert "Choose a time zone from the list, such as America/Chicago." in response.content.decode()
    nurse.refresh_from_db()
    assert nurse.time_zone == "America/New_York"
    response = client.post("/account/staff/", {**data, "time_zone": "America/Los_Angeles"})
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.time_zone == "America/Los_Angeles"
    assert "03/18/2024 02:06 PM PDT" in client.get("/account/security/").content.decode()


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Chicago", "America/Chicago"),
        ("  new   york ", "America/New_York"),
        ("america/new_york", "America/New_York"),
        ("Kolkata", "Asia/Kolkata"),
        ("utc", "UTC"),  # a whole name wins over Etc/UTC, a place of the same name
        ("Etc/UTC", "Etc/UTC"),
        ("Indianapolis", None),  # America/Indianapolis and America/Indiana/Indianapolis
        ("Atlantis", None),
        ("", None),
        ("America/", None),
    ],
)
def test_a_zone_is_named_by_its_name_or_its_one_place(typed, zone):
    assert time_zone_named(typed) == zone


def test_every_zone_is_named_by_its_own_name_in_any_case():
    for name in time_zone_names():
        assert time_zone_named(name) == name
        assert time_zone_named(name.upper()) == name


def test_staff_may_type_the_place_and_the_zone_is_saved(nurse):
    client = signed_in(nurse)
    data = {"email": nurse.email, "home_phone": "", "cell_phone": ""}
    response = client.post("/account/staff/", {**data, "time_zone": " los angeles "})
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.time_zone == "America/Los_Angeles"
    response = client.post("/account/staff/", {**data, "time_zone": "Indianapolis"})
    assert response.status_code == 400  # two zones are named after it: pick one
    nurse.refresh_from_db()
    assert nurse.time_zone == "America/Los_Angeles"
