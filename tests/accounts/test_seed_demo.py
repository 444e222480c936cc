import pytest
from django.core.management import CommandError, call_command

from accounts.mfa import mfa_device
from accounts.models import User
from audit.models import AuditEvent
from ehr import policies


def test_seed_demo_creates_the_spec_accounts_and_is_idempotent(db, settings, client):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {
        "dorothy",
        "dori",
        "agent",
        "compliance",
        "auditor",
        "otherdoc",
        "padmin",
    }
    dorothy = users["dorothy"]
    assert (dorothy.first_name, dorothy.last_name) == ("dorothy", "Ludwig")
    assert dorothy.provider_profile.doctor_id == 496094
    assert users["dori"].roles == {"nurse"}
    assert users["agent"].roles == {"support_agent"} and users["agent"].practice is None
    assert users["compliance"].roles == {"compliance_officer"}
    assert users["auditor"].roles == {"platform_auditor"}
    assert users["otherdoc"].practice != dorothy.practice
    # The practice admin who can lift dorothy's and Dori's sign-in locks, enrolled in
    # two-factor like the other privileged demo accounts.
    assert users["padmin"].roles == {"practice_admin"}
    assert users["padmin"].practice == dorothy.practice
    # A few patients' chart views, once, for the patient box and a patient's history.
    views = AuditEvent.objects.filter(kind="patient.chart_viewed")
    assert views.count() == 5
    assert set(views.values_list("patient_name", flat=True)) == {
        "Ana Lopez",
        "Marcus Webb",
        "Grace Kim",
    }
    assert set(views.values_list("practice_id", flat=True)) == {dorothy.practice_id}
    enrolled = {u for u, user in users.items() if mfa_device(user) is not None}
    assert enrolled == {"agent", "compliance", "auditor", "padmin"}
    assert policies.can_unlock_sign_in(users["padmin"], dorothy)
    response = client.post(
        "/accounts/login/", {"username": "dorothy", "password": "demo-pass-2024"}
    )
    assert response.status_code == 302


def test_seed_demo_refuses_when_debug_is_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG must be on"):
        call_command("seed_demo")
    assert not User.objects.exists()
