from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEvent
from break_glass.models import BreakGlassGrant
from break_glass.services import break_glass_open, break_glass_review
from tests.factories import confirm_identity, make_user
from tests.support_pin.helpers import current_pin

REASON = "Caller lost her phone and cannot sign in to read her Support PIN; verified by callback."


@pytest.fixture
def compliance(practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")


@pytest.fixture
def agent_client(agent):
    client = Client()
    client.force_login(agent)
    confirm_identity(client)  # opening break-glass access is behind re-authentication
    return client


def grant_events(grant) -> list[str]:
    return list(
        AuditEvent.objects.filter(data__break_glass=grant.pk)
        .order_by("seq")
        .values_list("details", flat=True)
    )


def test_opening_needs_a_real_justification_and_at_most_an_hour(agent, provider):
    with pytest.raises(ValidationError, match="at least 30 characters"):
        break_glass_open(
            acting_user=agent, account=provider, justification="  too   short ", minutes=10, ip=None
        )
    for minutes in (0, 61):
        with pytest.raises(ValidationError, match="between 1 and 60"):
            break_glass_open(
                acting_user=agent, account=provider, justification=REASON, minutes=minutes, ip=None
            )
    assert not BreakGlassGrant.objects.exists()


def test_only_agents_open_it(nurse, provider):
    with pytest.raises(PermissionDenied):
        break_glass_open(
            acting_user=nurse, account=provider, justification=REASON, minutes=10, ip=None
        )


def test_opening_tells_the_owner_and_the_compliance_officers_at_once(
    agent, provider, compliance, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        grant = break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=15, ip="203.0.113.4"
        )
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {provider.email, compliance.email}
    assert REASON in mail.outbox[0].body
    assert grant_events(grant) == [
        f"Break-glass access #{grant.pk} opened for user dorothy Ludwig for 15 minutes: {REASON}"
    ]


def test_using_it_shows_identity_rotates_the_pin_and_audits_every_step(
    agent_client, agent, provider, django_capture_on_commit_callbacks
):
    provider.provider_profile.cell_phone = "+12025550143"
    provider.provider_profile.save()
    response = agent_client.post(
        f"/support/break-glass/{provider.pk}/", {"justification": REASON, "minutes": 20}
    )
    grant = BreakGlassGrant.objects.get()
    assert response["Location"] == f"/support/break-glass/grant/{grant.pk}/"
    page = agent_client.get(response["Location"])
    text = page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert "496094" in text and provider.email in text and "+12025550143" in text
    assert current_pin(provider) not in text
    before = current_pin(provider)
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(f"/support/break-glass/grant/{grant.pk}/rotate-pin/")
    assert current_pin(provider) != before
    assert any("Support PIN was replaced" in m.subject for m in mail.outbox)
    assert all(current_pin(provider) not in m.body for m in mail.outbox)
    assert grant_events(grant) == [
        f"Break-glass access #{grant.pk} opened for user dorothy Ludwig for 20 minutes: {REASON}",
        f"Identity details of user dorothy Ludwig viewed under break-glass access #{grant.pk}",
        f"Support PIN of user dorothy Ludwig replaced under break-glass access #{grant.pk}",
    ]


def test_it_stops_at_expiry_and_the_expiry_is_recorded_once(agent_client, agent, provider):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = agent_client.get(f"/support/break-glass/grant/{grant.pk}/")
        assert response["Location"] == "/support/validate/"
        call_command("break_glass_expire")
    assert (
        grant_events(grant)[-1] == f"Break-glass access #{grant.pk} to user dorothy Ludwig expired"
    )
    assert sum("expired" in d for d in grant_events(grant)) == 1


def test_another_agent_cannot_use_a_grant(agent, provider):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    other = make_user(Role.SUPPORT_AGENT)
    client = Client()
    client.force_login(other)
    assert client.get(f"/support/break-glass/grant/{grant.pk}/")["Location"] == "/support/validate/"
    assert not AuditEvent.objects.filter(kind="break_glass.identity_viewed").exists()


def test_compliance_reviews_their_practice_only(agent, provider, other_provider, compliance):
    mine = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    theirs = break_glass_open(
        acting_user=agent, account=other_provider, justification=REASON, minutes=5, ip=None
    )
    client = Client()
    client.force_login(compliance)
    page = client.get("/audit/break-glass/").content.decode()
    assert "Mark reviewed" in page and f">{mine.pk}<" in page
    assert f">{theirs.pk}<" not in page  # another practice's access is not listed
    assert client.post(f"/audit/break-glass/{theirs.pk}/review/").status_code == 404
    client.post(f"/audit/break-glass/{mine.pk}/review/")
    mine.refresh_from_db()
    assert mine.reviewed_by == compliance
    assert (
        grant_events(mine)[-1] == f"Break-glass access #{mine.pk} to user dorothy Ludwig reviewed"
    )
    with pytest.raises(PermissionDenied):
        break_glass_review(grant=theirs, acting_user=compliance, ip=None)


def test_the_report_filters_break_glass_events(agent, provider, compliance):
    break_glass_open(acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None)
    client = Client()
    client.force_login(compliance)
    rows = client.get("/audit/", {"break_glass": "on"}).context["rows"]
    assert rows and all("break-glass" in row["details"].lower() for row in rows)
