"""A platform auditor's practice box: suggestions as one types, a Group ID or a whole name."""

import pytest

from accounts.selectors import PRACTICE_SEARCH_LIMIT
from audit.models import AuditEvent
from tests.factories import make_practice

pytestmark = pytest.mark.django_db


def suggested(client, text=None):
    response = client.get("/audit/practices.json", {"q": text} if text is not None else {})
    assert response.status_code == 200
    return response.json()["results"]


def test_the_box_suggests_practices_by_part_of_the_name_or_the_start_of_the_group_id(
    client, auditor, practice, other_practice
):
    client.force_login(auditor)
    assert suggested(client, "harbor") == [
        {"id": other_practice.group_id, "name": "Harbor Street Clinic"}
    ]
    assert suggested(client, str(practice.group_id)) == [
        {"id": practice.group_id, "name": "Ludwig Family Medicine"}
    ]
    both = suggested(client, "i")  # in both names, listed by name
    assert [p["name"] for p in both] == ["Harbor Street Clinic", "Ludwig Family Medicine"]
    assert suggested(client, "") == suggested(client) == suggested(client, "   ") == []
    assert suggested(client, "%") == suggested(client, "_") == []  # no wildcards
    assert suggested(client, "x" * 5000) == []  # cut to 200 characters, no error


def test_the_box_offers_at_most_twenty(client, auditor):
    for n in range(PRACTICE_SEARCH_LIMIT + 5):
        make_practice(f"Valley Clinic {n:02}")
    client.force_login(auditor)
    found = suggested(client, "valley")
    assert [p["name"] for p in found] == [f"Valley Clinic {n:02}" for n in range(20)]


@pytest.mark.parametrize("who", ["compliance", "provider", "nurse", "agent"])
def test_only_platform_auditors_may_list_practices(client, request, practice, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/audit/practices.json", {"q": "a"}).status_code == 403


def test_the_report_takes_a_group_id_or_a_whole_name_and_refuses_anything_else(
    client, auditor, log, other_practice
):
    client.force_login(auditor)
    everyone = client.get("/audit/", {"last": "year"}).content.decode().count("<tr><td>")
    by_id = client.get("/audit/", {"last": "year", "practice": other_practice.group_id})
    by_name = client.get("/audit/", {"last": "year", "practice": " harbor street CLINIC "})
    rows = by_id.content.decode().count("<tr><td>")
    assert 0 < rows < everyone
    assert by_name.content.decode().count("<tr><td>") == rows
    expected = AuditEvent.objects.filter(practice=other_practice, occurred_at__year=2024).count()
    assert rows == min(expected, 50)
    for typed in ("Harbor", "999999", "99999999999999999999999", str(other_practice.pk + 10**6)):
        response = client.get("/audit/", {"last": "year", "practice": typed})
        assert response.status_code == 400, typed
        assert "No practice has that name or Group ID." in response.content.decode()


def test_two_practices_of_one_name_are_told_apart_by_group_id(client, auditor):
    first, second = make_practice("Twin Oaks Clinic"), make_practice("Twin Oaks Clinic")
    client.force_login(auditor)
    response = client.get("/audit/dashboard/", {"practice": "Twin Oaks Clinic"})
    assert response.status_code == 400
    assert "pick the practice from the list" in response.content.decode()
    assert [p["id"] for p in suggested(client, "twin oaks")] == [first.group_id, second.group_id]
    assert client.get("/audit/dashboard/", {"practice": second.group_id}).status_code == 200
