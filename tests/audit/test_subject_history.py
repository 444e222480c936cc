"""Who touched this account or patient: the history page, its exports, its scope."""

import json
from datetime import timedelta

import pytest
from django.db import connection

from accounts.roles import Role
from audit import kinds, selectors
from audit.models import AuditEvent
from tests.audit.helpers import NOW, chart_viewed, record_at
from tests.audit.test_report import read_csv
from tests.factories import confirm_identity, make_user


@pytest.fixture
def touched(log, provider, nurse, agent):
    """Beside the report's log: an agent validates dorothy's PIN, dorothy edits Dori."""
    record_at(
        NOW - timedelta(days=20),
        kind=kinds.SUPPORT_PIN_VALIDATED,
        acting_user=agent,
        account=provider,
        ip="2605:a601:ac72:c200:d5e7:5fe4:ad72:8204",
    )
    record_at(
        NOW - timedelta(days=1),
        kind=kinds.PROFILE_UPDATED,
        acting_user=provider,
        account=nurse,
        ip="192.0.2.7",
    )


def account_url(account) -> str:
    return f"/audit/subject/account/{account.pk}/"


def details(response) -> list[str]:
    return [row["details"] for row in response.context["rows"]]


def test_an_accounts_history_lists_every_event_about_it_in_the_period(
    client, compliance, provider, touched
):
    client.force_login(compliance)
    response = client.get(account_url(provider))
    assert response.status_code == 200
    assert details(response) == [
        'Chart viewed for patient =HYPERLINK("http://evil","x")',
        "Chart viewed for patient Ada Lovelace",
        "Signed in as user dorothy Ludwig",
        "Signed out user dorothy Ludwig",
        "Successful validation of Support PIN for user dorothy Ludwig",
    ]  # not what dorothy did to Dori, nor the other practice's
    agent_row = response.context["rows"][-1]
    assert agent_row["user"] == "agent (Test User)"
    assert (agent_row["date"], agent_row["time"]) == ("02/28/2024", "11:00:00 AM EST")
    assert agent_row["ip"] == "2605:a601:ac72:c200:d5e7:5fe4:ad72:8204"
    page = response.content.decode()
    assert "Audit history of user 496094 (dorothy Ludwig)" in page
    assert "02/19/2024 to 03/19/2024" in page  # the last 30 days by default
    assert "printed by compliance (Carol Okafor) on 03/19/2024 12:00:00 PM EDT" in page
    # With what the account did: dorothy's edit of Dori's profile too (after the record
    # of the reading above, which is about dorothy).
    more = details(client.get(account_url(provider), {"include_actions": "on"}))
    assert more[0] == (
        "Audit history viewed for user dorothy Ludwig: 5 events (02/19/2024 to 03/19/2024)"
    )
    more.remove("Profile updated for user Dori User")
    assert more[1:] == details(response)
    # A chosen period.
    one_day = client.get(
        account_url(provider), {"date_from": "2024-02-28", "date_to": "02/28/2024"}
    )
    assert details(one_day) == ["Successful validation of Support PIN for user dorothy Ludwig"]
    assert len(details(client.get(account_url(provider), {"last": "90"}))) == 5 + 3  # readings


def test_reading_a_history_is_itself_recorded_and_shows_in_it(client, compliance, provider, log):
    client.force_login(compliance)
    client.get(account_url(provider), {"date_from": "2024-03-01", "date_to": "2024-03-19"})
    event = AuditEvent.objects.get(kind=kinds.AUDIT_ACCOUNT_HISTORY_VIEWED.code)
    assert (event.actor_id, event.account_id, event.type, event.action) == (
        compliance.pk,
        provider.pk,
        "Report",
        "View",
    )
    assert event.details == (
        "Audit history viewed for user dorothy Ludwig: 4 events (03/01/2024 to 03/19/2024)"
    )
    assert event.data == {"subject_account_id": provider.pk, "include_actions": False}
    again = details(client.get(account_url(provider)))
    assert again[0] == event.details  # who looked is part of the account's history


def test_a_patients_history(client, compliance, provider, nurse, practice, log):
    chart_viewed(nurse, "P-200", "Ada Lovelace", NOW - timedelta(days=12))
    client.force_login(compliance)
    url = f"/audit/subject/patient/{practice.pk}/P-200/"
    response = client.get(url)
    assert response.status_code == 200
    assert details(response) == ["Chart viewed for patient Ada Lovelace"] * 2
    assert [row["user"] for row in response.context["rows"]] == [
        "496094 (dorothy Ludwig)",
        "dori (Dori User)",
    ]
    assert "Audit history of patient Ada Lovelace (P-200)" in response.content.decode()
    event = AuditEvent.objects.get(kind=kinds.AUDIT_PATIENT_HISTORY_VIEWED.code)
    assert (event.patient_id, event.patient_name, event.practice_id) == (
        "P-200",
        "Ada Lovelace",
        practice.pk,
    )
    assert event.details.startswith("Audit history viewed for patient Ada Lovelace: 2 events")
    # The report links each patient and user to their history, and its patient filter too.
    report = client.get("/audit/", {"patient": "P-200"})
    assert report.context["rows"][0]["patient_url"] == url
    assert report.context["patient_history_url"] == url
    assert f'href="{url}"' in report.content.decode()


def test_a_long_history_lists_the_newest_and_says_so(
    client, compliance, provider, log, monkeypatch
):
    monkeypatch.setattr(selectors, "SUBJECT_LIMIT", 3)
    client.force_login(compliance)
    response = client.get(account_url(provider))
    assert len(response.context["rows"]) == 3 and response.context["more"]
    assert "More than 3 events from 02/19/2024 to 03/19/2024" in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2024-02-30"},
        {"date_to": "1800-01-01"},
        {"date_from": "2024-03-19", "date_to": "2024-03-01"},
        {"last": "7"},
        {"date_to": "9999-12-31"},
    ],
)
def test_bad_periods_are_answered_with_a_message_and_record_nothing(
    client, compliance, provider, log, params
):
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get(account_url(provider), params)
    assert response.status_code == 400 and 'class="error"' in response.content.decode()
    assert client.get(account_url(provider) + "export.csv", params).status_code == 400
    assert not AuditEvent.objects.filter(kind__startswith="audit.").exists()


def test_the_exports_hold_the_same_events_and_are_recorded(client, compliance, provider, touched):
    client.force_login(compliance)
    shown = details(client.get(account_url(provider)))
    # Behind the same confirmation as the report's exports.
    refused = client.get(account_url(provider) + "export.csv")
    assert refused.status_code == 302 and refused["Location"].startswith("/account/confirm/")
    confirm_identity(client)
    response = client.get(account_url(provider) + "export.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-history_account-{provider.pk}_2024-02-19_to_2024-03-19.csv"'
    )
    rows = read_csv(response)
    # The page's own event (written after its rows were read) now leads the file.
    assert [row[6] for row in rows[1:]] == [
        "Audit history viewed for user dorothy Ludwig: 5 events (02/19/2024 to 03/19/2024)",
        *shown,
    ]
    event = AuditEvent.objects.get(kind=kinds.AUDIT_EXPORTED.code)
    assert event.details == (
        f"Audit log exported: 6 events (02/19/2024 to 03/19/2024; history of account {provider.pk})"
    )
    assert event.data["subject_account_id"] == provider.pk
    fhir = client.get(account_url(provider) + "export.fhir.json", {"include_actions": "on"})
    bundle = json.loads(b"".join(fhir.streaming_content))
    assert bundle["total"] == 7  # and dorothy's edit of Dori
    assert AuditEvent.objects.get(kind=kinds.AUDIT_EXPORTED_FHIR.code).details.endswith(
        f"history of account {provider.pk} with its own actions)"
    )


def test_an_auditors_export_of_a_history_is_filed_where_the_practice_reads_it(
    client, auditor, compliance, provider, practice, log
):
    """Exported by a platform auditor, a practice's history is still in the practice's own
    log (its officers see it), and a patient's under the patient, beside its views."""
    chart_viewed(provider, "P-200", "Ada Lovelace", NOW - timedelta(days=12))
    client.force_login(auditor)
    confirm_identity(client)
    patient_url = f"/audit/subject/patient/{practice.pk}/P-200/"
    for url in (patient_url + "export.csv", account_url(provider) + "export.csv"):
        assert len(read_csv(client.get(url))) > 1
    patient_export, account_export = AuditEvent.objects.filter(
        kind=kinds.AUDIT_EXPORTED.code
    ).order_by("id")
    assert (patient_export.practice_id, patient_export.patient_id) == (practice.pk, "P-200")
    assert patient_export.actor_id == auditor.pk
    assert (account_export.practice_id, account_export.patient_id) == (practice.pk, "")
    # The practice's officer reads both, and the patient's history lists its export.
    client.force_login(compliance)
    scope = selectors.audit_event_scope(viewer=compliance)
    assert scope.filter(pk__in=[patient_export.pk, account_export.pk]).count() == 2
    assert any(text.startswith("Audit log exported") for text in details(client.get(patient_url)))


def test_who_may_read_whose_history(
    client, compliance, auditor, provider, nurse, agent, other_provider, other_practice, log
):
    other_patient = f"/audit/subject/patient/{other_practice.pk}/P-900/"
    client.force_login(compliance)
    assert client.get(account_url(nurse)).status_code == 200
    # Another practice's account or patient: not found, page or export.
    confirm_identity(client)
    for url in (
        account_url(other_provider),
        account_url(other_provider) + "export.csv",
        account_url(other_provider) + "export.fhir.json",
        other_patient,
        other_patient + "export.csv",
        "/audit/subject/account/99999999/",
        "/audit/subject/account/99999999999999999999999/",
    ):
        assert client.get(url).status_code == 404, url
    # The platform's staff who act on the practice: only the practice's events about them.
    assert client.get(account_url(agent)).status_code == 200
    # A platform auditor reads everyone's.
    client.force_login(auditor)
    response = client.get(account_url(other_provider))
    assert "Signed in as user Test User" in details(response)
    assert client.get(other_patient).status_code == 200
    # Nobody else.
    for who in (provider, nurse, agent):
        client.force_login(who)
        assert client.get(account_url(provider)).status_code == 403
    assert not AuditEvent.objects.filter(
        kind=kinds.AUDIT_ACCOUNT_HISTORY_VIEWED.code, actor_id__in=[provider.pk, agent.pk]
    ).exists()


def test_practice_staff_links_each_member_to_their_history(client, practice, nurse):
    both = make_user(Role.PRACTICE_ADMIN, practice=practice, username="both")
    client.force_login(both)
    assert account_url(nurse) not in client.get("/practice/staff/").content.decode()
    both.groups.add(*make_user(Role.COMPLIANCE_OFFICER, practice=practice).groups.all())
    client.force_login(both)
    assert account_url(nurse) in client.get("/practice/staff/").content.decode()


def test_history_query_count_is_pinned(
    client, compliance, provider, touched, django_assert_num_queries
):
    client.force_login(compliance)
    client.get(account_url(provider))  # warm the session and user caches
    # session, user, device, whether it has a passkey (signed in with the app, in its
    # grace period), roles, the account, its events, then the event that records the
    # reading: the chain's head, then the insert, the head's move and the dashboard's two
    # counters (one statement on PostgreSQL, four on SQLite).
    with django_assert_num_queries(9 if connection.vendor == "postgresql" else 12):
        client.get(account_url(provider))
