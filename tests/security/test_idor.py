"""Every id a request carries, swapped for another practice's or another user's: nothing of
theirs is shown or changed."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User, UserSession
from accounts.roles import Role
from accounts.selectors import profile_image_urls
from accounts.services import provider_profile_update
from break_glass.models import BreakGlassGrant
from break_glass.services import break_glass_open
from tests.factories import PASSWORD, confirm_identity, make_practice, make_user
from tests.images import image_bytes, upload
from tests.support_pin.helpers import current_pin

REASON = "Caller cannot give the PIN; verifying identity by callback to the office."


@pytest.fixture
def world(people):
    """Practice A (the `people`) and practice B, with one of everything in B."""
    other = make_practice("Harbor Street Clinic")
    victim = make_user(Role.NURSE, practice=other, username="victim", first_name="Vera")
    victim_doctor = make_user(Role.PROVIDER, practice=other, username="victimdoc")
    client = Client()
    client.post("/accounts/login/", {"username": "victim", "password": PASSWORD})
    second_agent = make_user(Role.SUPPORT_AGENT, username="agent2")
    grant = break_glass_open(
        acting_user=second_agent, account=victim_doctor, justification=REASON, minutes=30, ip=None
    )
    return {
        "victim": victim,
        "victim_doctor": victim_doctor,
        "victim_session": UserSession.objects.get(user=victim),
        "victim_client": client,
        "grant": grant,
    }


def signed_in(people, role):
    """Signed in and recently confirmed: what is left to stop them is the object check."""
    client = Client()
    client.force_login(people[role.value])
    confirm_identity(client)
    return client


def test_practice_admin_actions_on_another_practices_user(people, world):
    admin = signed_in(people, Role.PRACTICE_ADMIN)
    victim = world["victim"]
    for name, data in (
        ("practice_staff_unlock", {}),
        ("practice_staff_sign_out", {}),
        ("practice_staff_deactivate", {"confirm": "deactivate"}),
        ("practice_staff_reactivate", {}),
        ("practice_staff_role", {"role": "billing"}),
    ):
        response = admin.post(reverse(name, kwargs={"user_id": victim.pk}), data)
        assert response.status_code == 404, name
    victim.refresh_from_db()
    assert victim.is_active and victim.roles == {"nurse"}
    assert world["victim_client"].get("/account/staff/").status_code == 200


def test_another_users_images_and_sessions(people, world):
    provider = signed_in(people, Role.PROVIDER)
    doctor = world["victim_doctor"]
    profile = provider_profile_update(
        profile=doctor.provider_profile,
        acting_user=doctor,
        changes={"profile_picture": upload("me.png", image_bytes())},
        ip=None,
    )
    url = profile_image_urls(profile=profile)["picture"]  # the real address of a real picture
    shown = world["victim_client"].get(url)  # her colleague sees it
    assert shown.status_code == 200 and b"".join(shown.streaming_content).startswith(b"\x89PNG")
    assert provider.get(url).status_code == 404
    response = provider.post(
        f"/account/security/sessions/{world['victim_session'].pk}/end/", {"password": PASSWORD}
    )
    assert response.status_code == 302
    assert world["victim_client"].get("/account/staff/").status_code == 200


def test_another_agents_break_glass_grant(people, world):
    agent = signed_in(people, Role.SUPPORT_AGENT)
    grant = world["grant"]
    pin = current_pin(world["victim_doctor"])
    page = agent.get(reverse("break_glass_grant", kwargs={"grant_id": grant.pk}), follow=True)
    assert world["victim_doctor"].email not in page.content.decode()
    agent.post(reverse("break_glass_rotate_pin", kwargs={"grant_id": grant.pk}))
    assert current_pin(world["victim_doctor"]) == pin


def test_another_practices_break_glass_review(people, world):
    compliance = signed_in(people, Role.COMPLIANCE_OFFICER)
    grant = world["grant"]
    response = compliance.post(reverse("break_glass_review", kwargs={"grant_id": grant.pk}))
    assert response.status_code == 404
    assert BreakGlassGrant.objects.get(pk=grant.pk).reviewed_at is None
    assert f">{grant.pk}<" not in compliance.get("/audit/break-glass/").content.decode()


def test_another_practices_events_and_patients_by_filter(people, world):
    compliance = signed_in(people, Role.COMPLIANCE_OFFICER)
    page = compliance.get("/audit/", {"username": "victim", "last": "year"}).content.decode()
    assert "Vera" not in page
    export = compliance.get("/audit/export.csv", {"username": "victimdoc", "last": "year"})
    body = b"".join(export.streaming_content).decode()
    assert body.count("\n") == 1  # the header only
    fhir = compliance.get("/audit/export.fhir.json", {"username": "victimdoc", "last": "year"})
    bundle = json.loads(b"".join(fhir.streaming_content))
    assert bundle["total"] == 0 and "entry" not in bundle  # FHIR has no empty arrays
    everyone = compliance.get("/audit/export.fhir.json", {"last": "year"})
    assert "Vera" not in b"".join(everyone.streaming_content).decode()


def test_another_practices_account_and_patient_history(people, world):
    from audit import kinds
    from audit.services import audit_event_record

    victim = world["victim_doctor"]
    audit_event_record(
        kind=kinds.PATIENT_CHART_VIEWED,
        acting_user=victim,
        account=victim,
        ip=None,
        patient_id="P-7",
        patient_name="Vera's Patient",
        params={"patient": "Vera's Patient"},
    )
    compliance = signed_in(people, Role.COMPLIANCE_OFFICER)
    account = f"/audit/subject/account/{victim.pk}/"
    patient = f"/audit/subject/patient/{victim.practice_id}/P-7/"
    for url in (account, patient):
        for tail in ("", "export.csv", "export.fhir.json"):
            assert compliance.get(url + tail).status_code == 404, url + tail
    # The same patient id under the officer's own practice names no patient of theirs.
    own = people[Role.COMPLIANCE_OFFICER.value].practice_id
    assert compliance.get(f"/audit/subject/patient/{own}/P-7/").status_code == 404
    auditor = signed_in(people, Role.PLATFORM_AUDITOR)
    assert "Vera" in auditor.get(patient).content.decode()


def test_unknown_and_malformed_ids_are_answered_without_errors(people):
    admin = signed_in(people, Role.PRACTICE_ADMIN)
    assert admin.post("/practice/staff/99999999/deactivate/").status_code == 404
    assert admin.post("/practice/staff/99999999999999999999/role/").status_code == 404
    provider = signed_in(people, Role.PROVIDER)
    for value in ("x", "-1", "1e9", "9" * 400, "%00", "..%2F..", "A" * 40, "9" * 39 + "%00"):
        url = f"/account/security/sessions/{value}/end/"
        assert provider.post(url, {"password": PASSWORD}).status_code == 404, value
    unknown = provider.post(f"/account/security/sessions/{'9' * 40}/end/", {"password": PASSWORD})
    assert unknown.status_code == 302  # well formed, not theirs: nothing happens
    assert User.objects.filter(is_active=True).count() == len(people)


def test_another_practices_alert(people, world, settings):
    from alerts.services import alerts_evaluate
    from support_pin.services import support_pin_reveal

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=world["victim"], ip=None)
    [alert] = alerts_evaluate()
    officer = signed_in(people, Role.COMPLIANCE_OFFICER)
    assert officer.get(reverse("alert_detail", kwargs={"alert_id": alert.pk})).status_code == 404
    response = officer.post(
        reverse("alert_acknowledge", kwargs={"alert_id": alert.pk}), {"note": "Mine now."}
    )
    assert response.status_code == 404
    assert f"#{alert.pk}<" not in officer.get(reverse("alert_list")).content.decode()
    alert.refresh_from_db()
    assert alert.is_open
