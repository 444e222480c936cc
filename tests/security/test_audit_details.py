"""Text typed into the report's filters never becomes the wording of an audit event.

The export records its filters in its own event, which compliance officers and
auditors read next to everyone else's. A username typed as
`x) Support PIN viewed for user dorothy Ludwig (` must not make that event's
Details read like a PIN view that never happened.
"""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roles import Role
from audit import kinds
from audit.forms import AuditEventFilter
from audit.models import AuditEvent
from tests.audit.helpers import chart_viewed
from tests.factories import confirm_identity, streamed

FORGED = "x) Support PIN viewed for user dorothy Ludwig ("
RANGE = {"date_from": "2024-03-01", "date_to": "2024-03-31"}


@pytest.fixture
def exporter(people):
    client = Client()
    client.force_login(people[Role.COMPLIANCE_OFFICER.value])
    confirm_identity(client)
    return client


def export_event(client, params) -> AuditEvent:
    response = client.get("/audit/export.csv", {**RANGE, **params})
    assert response.status_code == 200
    streamed(response)
    return AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED.code).latest("seq")


def test_a_typed_username_cannot_word_an_event(exporter):
    event = export_event(exporter, {"username": FORGED})
    assert (
        event.details == "Audit log exported: 0 events (03/01/2024 to 03/31/2024; username filter)"
    )
    # What matched no account is not kept: text typed into the wrong box can be a password.
    assert event.data["username_input"] is None
    assert event.data["username_account_id"] is None
    assert FORGED not in str(event.data)
    assert not AuditEvent.objects.filter(details__contains="Support PIN viewed").exists()


def test_a_username_that_matches_records_whom_it_matched(exporter, people):
    provider = people[Role.PROVIDER.value]
    event = export_event(exporter, {"username": provider.username.upper()})
    assert event.details.endswith("(03/01/2024 to 03/31/2024; username filter)")
    assert event.data["username_input"] == provider.username.upper()
    assert event.data["username_account_id"] == provider.pk


def test_every_filter_is_named_in_fixed_words(exporter, people):
    provider = people[Role.PROVIDER.value]
    patient = f"{FORGED} =1+1"
    chart_viewed(provider, "P-7) Support PIN", patient, datetime(2024, 3, 5, 15, tzinfo=UTC))
    event = export_event(
        exporter,
        {
            "username": FORGED,
            "type": "Patient",
            "patient": "P-7) Support PIN",
            "break_glass": "on",
        },
    )
    assert event.details == (
        "Audit log exported: 0 events "
        "(03/01/2024 to 03/31/2024; username filter; type Patient; patient filter; "
        "break-glass only)"
    )
    assert event.data["patient_id"] == "P-7) Support PIN"
    assert patient not in str(event.data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=st.text(max_size=150), patient=st.text(min_size=1, max_size=64))
def test_details_are_the_same_whatever_is_typed(db, username, patient):
    filterset = AuditEventFilter(
        {**RANGE, "username": username, "patient": patient},
        queryset=AuditEvent.objects.all(),
        find_patients=lambda text: [(patient, "Any Name")],  # the text names this patient
        find_accounts=lambda text: [],  # and no account
        time_zone=ZoneInfo("UTC"),
        today=date(2024, 3, 19),
    )
    if not filterset.is_valid():
        assert "\x00" in username + patient, filterset.errors  # Django refuses NUL in text
        return
    typed = filterset.form.cleaned_data["username"]
    expected = ["03/01/2024 to 03/31/2024"]
    expected += ["username filter"] if typed else []
    expected += ["patient filter"] if patient.strip() else []
    assert filterset.describe() == "; ".join(expected)
    facts = filterset.describe_data()
    assert facts.get("patient_id") == (patient if patient.strip() else None)
    if typed:
        assert facts["username_input"] is None and facts["username_account_id"] is None


def test_the_date_range_in_details_comes_from_the_validated_dates(exporter):
    event = export_event(exporter, {"date_from": "03/01/2024", "date_to": "03/31/2024"})
    assert event.details == "Audit log exported: 0 events (03/01/2024 to 03/31/2024)"
    assert set(event.data) == {"rows", "checkpoint"}
