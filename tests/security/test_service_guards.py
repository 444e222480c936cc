"""Every service checks who acts, whatever page calls it: a wrong actor is refused and
nothing changes (the views filter first, so only calling the service shows the check)."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts import services as accounts
from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEvent
from break_glass.models import BreakGlassGrant
from break_glass.services import break_glass_identity, break_glass_open, break_glass_rotate_pin
from support_pin import selectors
from support_pin.models import AccountPins
from support_pin.services import (
    app_pin_change,
    support_pin_generate,
    support_pin_validation_unblock,
)
from tests.break_glass.test_break_glass import REASON
from tests.factories import make_user
from tests.support_pin.helpers import current_pin


@pytest.fixture
def admin(practice):
    return make_user(Role.PRACTICE_ADMIN, practice=practice, username="pam")


@pytest.fixture
def outsider(other_practice):
    """A practice admin, of another practice."""
    return make_user(Role.PRACTICE_ADMIN, practice=other_practice, username="oscar")


def refused(call) -> None:
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        call()
    assert AuditEvent.objects.count() == before


def test_unlocking_sign_in_is_for_the_practice_admin_of_the_account(nurse, provider, outsider):
    for actor in (nurse, outsider):
        refused(
            lambda actor=actor: accounts.sign_in_unlock(
                account=provider, acting_user=actor, ip=None
            )
        )


def test_deactivating_is_for_the_practice_admin_of_the_account(nurse, provider, outsider):
    for actor in (nurse, outsider):
        refused(
            lambda actor=actor: accounts.user_set_active(
                account=provider, active=False, acting_user=actor, ip=None
            )
        )
    assert User.objects.get(pk=provider.pk).is_active


def test_a_role_is_given_by_the_practice_admin_and_only_a_staff_role(
    nurse, admin, outsider, practice
):
    scheduler = make_user(Role.SCHEDULER, practice=practice, username="sam")
    for actor, role in (
        (nurse, Role.BILLING),
        (outsider, Role.BILLING),
        (admin, Role.SUPPORT_AGENT),
    ):
        refused(
            lambda actor=actor, role=role: accounts.user_role_change(
                account=scheduler, role=role, acting_user=actor, ip=None
            )
        )
    assert User.objects.get(pk=scheduler.pk).roles == {Role.SCHEDULER.value}


def test_staff_are_created_by_a_practice_admin_and_with_a_staff_role(nurse, admin):
    for actor, role in ((nurse, Role.BILLING), (admin, Role.PLATFORM_AUDITOR)):
        refused(
            lambda actor=actor, role=role: accounts.staff_account_create(
                acting_user=actor,
                username="newbie",
                email="newbie@example.org",
                first_name="New",
                last_name="Bie",
                role=role,
                ip=None,
                set_password_url=lambda user: "https://ehr.example.org/set/",
            )
        )
    assert not User.objects.filter(username="newbie").exists()


def test_lifting_a_pin_block_is_for_the_practice_admin_of_the_account(nurse, provider, outsider):
    AccountPins.objects.filter(user=provider).update(validation_blocked_at=timezone.now())
    for actor in (nurse, outsider):
        refused(
            lambda actor=actor: support_pin_validation_unblock(
                acting_user=actor, account=provider, ip=None
            )
        )
    assert AccountPins.objects.get(user=provider).validation_blocked_at is not None


def test_a_grant_shows_identity_and_replaces_the_pin_for_its_agent_only(agent, provider):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    other = make_user(Role.SUPPORT_AGENT, username="agent2")
    pin = current_pin(provider)
    refused(lambda: break_glass_identity(grant=grant, acting_user=other, ip=None))
    refused(lambda: break_glass_rotate_pin(grant=grant, acting_user=other, ip=None))
    assert current_pin(provider) == pin


def test_the_console_never_offers_a_deactivated_account(provider, admin):
    assert selectors.console_account(account_id=provider.pk) == provider
    accounts.user_set_active(account=provider, active=False, acting_user=admin, ip=None)
    assert selectors.console_account(account_id=provider.pk) is None


def test_a_pin_is_not_shown_once_its_minute_has_passed(provider_client, password):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        response = provider_client.post("/account/pins/support/", {"password": password})
        assert response["Location"] == "/account/pins/shown/"
        clock.shift(timedelta(seconds=61))
        response = provider_client.get("/account/pins/shown/")
    assert response.status_code == 302 and response["Location"] == "/"


# Fail closed: when the event cannot be written, the action does not happen.


def _admin_deactivates(provider, practice, agent):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="pam2")
    return (
        lambda: accounts.user_set_active(
            account=provider, active=False, acting_user=admin, ip=None
        ),
        lambda: User.objects.get(pk=provider.pk).is_active,
    )


def _generates(provider, practice, agent):
    return (
        lambda: support_pin_generate(account=provider, acting_user=provider, ip=None),
        lambda: current_pin(provider),
    )


def _changes_app_pin(provider, practice, agent):
    return (
        lambda: app_pin_change(acting_user=provider, new_app_pin="2718", ip=None),
        lambda: current_pin(provider, "app_pin"),
    )


def _opens_break_glass(provider, practice, agent):
    return (
        lambda: break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
        ),
        lambda: BreakGlassGrant.objects.count(),
    )


def _reviews_break_glass(provider, practice, agent):
    from break_glass.models import ReviewOutcome
    from break_glass.services import break_glass_record_expiry, break_glass_review

    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="cora")
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=1, ip=None
    )
    ended = time_machine.travel(grant.expires_at + timedelta(minutes=1), tick=False)
    with ended:
        break_glass_record_expiry(grant=grant)  # its own event, before the store breaks

    def run():
        with ended:
            break_glass_review(
                grant=grant,
                acting_user=officer,
                outcome=ReviewOutcome.JUSTIFIED,
                note="Checked the callback log: it was her.",
                ip=None,
            )

    return run, lambda: BreakGlassGrant.objects.get(pk=grant.pk).reviewed_at


@pytest.mark.parametrize(
    "action",
    [_admin_deactivates, _generates, _changes_app_pin, _opens_break_glass, _reviews_break_glass],
)
def test_nothing_happens_when_its_event_cannot_be_written(
    action, provider, practice, agent, monkeypatch
):
    run, state = action(provider, practice, agent)
    before = state()

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("audit.hashing.row_hash", broken)
    with pytest.raises(RuntimeError):
        run()
    monkeypatch.undo()
    assert state() == before


def test_a_history_is_recorded_as_read_only_by_those_who_may_read_it(nurse, provider):
    from audit.services import audit_history_view_record

    refused(
        lambda: audit_history_view_record(
            acting_user=nurse, ip=None, account=provider, rows=3, period="03/12/2024 to 03/19/2024"
        )
    )
