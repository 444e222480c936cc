"""Audited reads (histories, exports, break-glass identity) never start from a link on another
site (ehr/navigation.py)."""

import pytest
from django.urls import reverse

from accounts.roles import Role
from audit.models import AuditEvent
from break_glass.services import break_glass_open
from tests.factories import confirm_identity, make_user

PATIENT = {"practice_id": 0, "patient_id": "P-1"}
REASON = "Caller lost her phone and cannot sign in to read her Support PIN; verified by callback."


@pytest.fixture
def compliance(practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")


def audited_reads(provider) -> list[str]:
    account = {"account_id": provider.pk}
    patient = {**PATIENT, "practice_id": provider.practice_id}
    return [
        reverse("audit_export"),
        reverse("audit_export_fhir"),
        reverse("audit_evidence"),
        reverse("audit_subject_account", kwargs=account),
        reverse("audit_subject_account_export", kwargs=account),
        reverse("audit_subject_account_export_fhir", kwargs=account),
        reverse("audit_subject_patient", kwargs=patient),
        reverse("audit_subject_patient_export", kwargs=patient),
        reverse("audit_subject_patient_export_fhir", kwargs=patient),
    ]


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_link_from_another_site_asks_first_and_records_nothing(
    client, compliance, provider, site
):
    client.force_login(compliance)
    confirm_identity(client)
    before = AuditEvent.objects.count()
    for url in audited_reads(provider):
        response = client.get(url, HTTP_SEC_FETCH_SITE=site)
        page = response.content.decode()
        assert response.status_code == 200, url
        assert "You followed a link from another site. Nothing has happened yet" in page, url
        assert f'<a class="button" href="{url}">Continue</a>' in page, url
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("site", ["same-origin", "none", None])
def test_from_this_site_typed_or_from_an_older_browser_it_happens(
    client, compliance, provider, site
):
    client.force_login(compliance)
    headers = {"HTTP_SEC_FETCH_SITE": site} if site else {}
    url = reverse("audit_subject_account", kwargs={"account_id": provider.pk})
    response = client.get(url, **headers)
    assert response.status_code == 200
    assert "You followed a link from another site" not in response.content.decode()
    assert AuditEvent.objects.filter(kind="audit.account_history_viewed").count() == 1


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_link_from_another_site_to_a_break_glass_grant_shows_no_identity_and_records_nothing(
    client, agent, provider, site
):
    """The grant's page records "Identity details ... viewed" each time it is opened."""
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=20, ip=None
    )
    client.force_login(agent)
    url = reverse("break_glass_grant", kwargs={"grant_id": grant.pk})
    before = AuditEvent.objects.count()
    response = client.get(url, HTTP_SEC_FETCH_SITE=site)
    page = response.content.decode()
    assert "You followed a link from another site. Nothing has happened yet" in page
    assert provider.email not in page and "496094" not in page
    assert AuditEvent.objects.count() == before
    opened = client.get(url, HTTP_SEC_FETCH_SITE="same-origin").content.decode()
    assert provider.email in opened
    assert AuditEvent.objects.count() == before + 1
