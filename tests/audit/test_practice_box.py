"""A platform auditor's practice box: suggestions as one types, a Group ID or a name."""

import re

import pytest

from accounts.selectors import PRACTICE_SEARCH_LIMIT
from audit import kinds
from audit.models import AuditEvent
from tests.factories import confirm_identity, make_practice


def details(response) -> tuple[str, ...]:
    html = response.content.decode()
    return tuple(re.findall(r"<td>([^<]*)</td><td class=\"ip\">", html))


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
    assert suggested(client, "x" * 200) == []


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "x" * 201])
@pytest.mark.parametrize("where", ["practices", "patients"])
def test_text_no_box_can_send_is_refused(client, auditor, practice, where, text):
    client.force_login(auditor)
    response = client.get(f"/audit/{where}.json", {"q": text})
    assert response.status_code == 400
    assert response.json()["results"] == []


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


def test_the_report_takes_a_group_id_or_a_name_or_part_of_one_and_refuses_anything_else(
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
    # A part of one practice's name only: that practice.
    by_part = client.get("/audit/", {"last": "year", "practice": "harbor"})
    assert by_part.content.decode().count("<tr><td>") == rows
    refused = ["Harbour", "999999", "99999999999999999999999", str(other_practice.pk + 10**6)]
    full_width = str(other_practice.group_id).translate(
        {ord(d): 0xFF10 + int(d) for d in "0123456789"}
    )
    refused += [full_width, "harbor street clinic\x00", "Harbor Street Clinic" + " x" * 200]
    for typed in refused:
        response = client.get("/audit/", {"last": "year", "practice": typed})
        assert response.status_code == 400, typed
        assert "No practice has that name or Group ID." in response.content.decode()


def test_two_practices_of_one_name_are_told_apart_by_group_id(client, auditor):
    first, second = make_practice("Twin Oaks Clinic"), make_practice("Twin Oaks Clinic")
    client.force_login(auditor)
    for typed in ("Twin Oaks Clinic", "oaks"):
        response = client.get("/audit/dashboard/", {"practice": typed})
        assert response.status_code == 400
        assert "Several practices have that in their name." in response.content.decode()
        assert "pick the practice from the list" in response.content.decode()
    assert [p["id"] for p in suggested(client, "twin oaks")] == [first.group_id, second.group_id]
    assert client.get("/audit/dashboard/", {"practice": second.group_id}).status_code == 200


@pytest.mark.parametrize("who", ["compliance", "provider", "nurse"])
def test_anyone_else_has_no_practice_filter_and_learns_no_practice_from_it(
    client, request, log, other_practice, who
):
    """Whether the address names a practice that exists, by name or Group ID, or none:
    the same page, the same rows, and the same export."""
    client.force_login(request.getfixturevalue(who))
    confirm_identity(client)
    pages = [
        client.get("/audit/", {"last": "year", "practice": typed})
        for typed in ("", other_practice.name, other_practice.group_id, "No Such Clinic", "a\x00")
    ]
    assert {page.status_code for page in pages} == {200}
    assert len({details(page) for page in pages}) == 1 and details(pages[0])
    assert 'name="practice"' not in pages[1].content.decode()
    exports = [
        client.get("/audit/export.csv", {"last": "year", "practice": typed})
        for typed in ("", other_practice.name, "No Such Clinic")
    ]
    assert {export.status_code for export in exports} == {200}
    # The same rows, but for the events of the exports themselves, each one more.
    bodies = [
        [
            line
            for line in b"".join(export.streaming_content).splitlines()
            if b",Export," not in line
        ]
        for export in exports
    ]
    assert bodies[0] == bodies[1] == bodies[2] and len(bodies[0]) > 1
    assert (
        "practice_id" not in AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED.code).last().data
    )


def test_an_export_of_one_practice_names_it_by_its_row(client, auditor, log, other_practice):
    client.force_login(auditor)
    confirm_identity(client)
    response = client.get(
        "/audit/export.csv", {"last": "year", "practice": other_practice.group_id}
    )
    rows = b"".join(response.streaming_content).decode().splitlines()
    exported = AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED.code).get()
    assert exported.data["practice_id"] == other_practice.pk
    assert "practice filter" in exported.details
    assert exported.data["rows"] == len(rows) - 1 > 0
