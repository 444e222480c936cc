from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import User
from audit.models import AuditEvent
from support_pin import services
from support_pin.models import AccountPins
from support_pin.services import (
    InvalidPinFormat,
    ValidationOutcome,
    normalize_pin,
    support_pin_validate,
)
from tests.factories import sent_mail
from tests.support_pin.helpers import ARABIC_INDIC, FULL_WIDTH, current_pin, wrong_pin


def events_since(seq: int) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(id__gt=seq)
        .order_by("id")
        .values_list("details", "actor_label", "type", "action", "ip")
    )


def head() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_every_new_account_has_both_pins_encrypted(provider):
    pins = AccountPins.objects.get(user=provider)
    for field in ("support_pin", "app_pin"):
        pin = current_pin(provider, field)
        assert len(pin) == 4 and pin.isascii() and pin.isdigit()
        assert getattr(pins, field).startswith("v1:") and pin not in getattr(pins, field)


def test_new_pin_never_repeats_the_old_one(monkeypatch):
    draws = iter([1234, 1234, 1234, 42])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(draws))
    assert services.new_pin(differs_from="1234") == "0042"


@pytest.mark.parametrize("raw", [" 1234 ", "1234", "\t0007\n"])
def test_spaces_around_a_pin_are_ignored(raw):
    assert normalize_pin(raw) == raw.strip()


@pytest.mark.parametrize(
    "raw", [ARABIC_INDIC, FULL_WIDTH, "12345", "123", "abcd", "12 34", "", "12.3", "+123"]
)
def test_anything_but_four_ascii_digits_is_refused(raw):
    with pytest.raises(InvalidPinFormat):
        normalize_pin(raw)


# Reveal


def test_reveal_shows_the_pin_and_records_it(provider):
    start = head()
    pin = services.support_pin_reveal(acting_user=provider, ip="2001:db8::9")
    assert pin == current_pin(provider)
    assert events_since(start) == [
        (
            "Support PIN viewed for user dorothy Ludwig",
            "496094 (dorothy Ludwig)",
            "Account",
            "Not specified",
            "2001:db8::9",
        ),
    ]


def test_app_pin_view_and_change(provider):
    start = head()
    assert services.app_pin_reveal(acting_user=provider, ip=None) == current_pin(
        provider, "app_pin"
    )
    assert services.app_pin_change(acting_user=provider, new_app_pin=" 0420 ", ip=None) == "0420"
    assert current_pin(provider, "app_pin") == "0420"
    with pytest.raises(InvalidPinFormat):
        services.app_pin_change(acting_user=provider, new_app_pin="42", ip=None)
    assert current_pin(provider, "app_pin") == "0420"
    assert [e[0] for e in events_since(start)] == [
        "App Unlock PIN viewed for user dorothy Ludwig",
        "App Unlock PIN changed for user dorothy Ludwig",
    ]


# Generate


def test_generate_replaces_the_pin_now(provider):
    before = current_pin(provider)
    start = head()
    services.support_pin_generate(account=provider, acting_user=provider, ip="198.51.100.7")
    assert current_pin(provider) != before
    assert events_since(start) == [
        (
            "Generated New PIN for user dorothy Ludwig",
            "496094 (dorothy Ludwig)",
            "Account",
            "Update",
            "198.51.100.7",
        ),
    ]


# Validate


def test_a_matching_pin_rotates_at_once_as_the_seed_records_it(provider, agent):
    pin = current_pin(provider)
    start = head()
    result = support_pin_validate(
        acting_user=agent, account=provider, pin=f" {pin} ", ip="203.0.113.5"
    )
    assert result.outcome is ValidationOutcome.MATCHED
    assert current_pin(provider) != pin
    assert events_since(start) == [
        (
            "Successful validation of Support PIN for user dorothy Ludwig",
            "agent (Test User)",
            "Account",
            "Not specified",
            "203.0.113.5",
        ),
        ("Generated New PIN for user dorothy Ludwig", "", "Account", "Update", None),
    ]
    # The old PIN is spent.
    again = support_pin_validate(acting_user=agent, account=provider, pin=pin, ip=None)
    assert again.outcome is ValidationOutcome.MISMATCHED


def test_a_wrong_pin_is_recorded(provider, agent):
    start = head()
    result = support_pin_validate(
        acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
    )
    assert result.outcome is ValidationOutcome.MISMATCHED and result.locked_until is None
    assert (
        events_since(start)[0][0]
        == "Unsuccessful validation of Support PIN for user dorothy Ludwig"
    )
    assert AccountPins.objects.get(user=provider).failed_validations == 1


def test_malformed_input_is_not_a_guess(provider, agent):
    start = head()
    for raw in (ARABIC_INDIC, FULL_WIDTH, "12345", "abcd"):
        with pytest.raises(InvalidPinFormat):
            support_pin_validate(acting_user=agent, account=provider, pin=raw, ip=None)
    assert AccountPins.objects.get(user=provider).failed_validations == 0
    assert events_since(start) == []


def test_only_support_agents_validate(provider, nurse):
    with pytest.raises(PermissionDenied):
        support_pin_validate(acting_user=nurse, account=provider, pin="1234", ip=None)


def test_five_failures_lock_rotate_and_email_the_owner(
    provider, agent, django_capture_on_commit_callbacks
):
    original = current_pin(provider)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            result = support_pin_validate(
                acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
            )
    assert result.locked_until is not None
    assert current_pin(provider) != original
    assert len(sent_mail()) == 1
    message = sent_mail()[0]
    assert message.to == [provider.email] and "locked" in message.subject
    assert current_pin(provider) not in message.body and original not in message.body
    details = list(AuditEvent.objects.order_by("id").values_list("details", flat=True))
    assert (
        "Support PIN validation locked for user dorothy Ludwig after 5 unsuccessful validations"
        in details
    )
    # Locked: the right PIN is not even compared.
    locked = support_pin_validate(
        acting_user=agent, account=provider, pin=current_pin(provider), ip=None
    )
    assert locked.outcome is ValidationOutcome.LOCKED
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        fine = support_pin_validate(
            acting_user=agent, account=provider, pin=current_pin(provider), ip=None
        )
    assert fine.outcome is ValidationOutcome.MATCHED


def test_a_match_resets_the_failure_count(provider, agent):
    """Only consecutive failures lock: 4 wrong, the right one, 4 wrong is not a lock."""

    def validate(pin: str) -> services.ValidationResult:
        return support_pin_validate(acting_user=agent, account=provider, pin=pin, ip=None)

    for _ in range(4):
        assert validate(wrong_pin(provider)).outcome is ValidationOutcome.MISMATCHED
    assert AccountPins.objects.get(user=provider).failed_validations == 4
    assert validate(current_pin(provider)).outcome is ValidationOutcome.MATCHED
    assert AccountPins.objects.get(user=provider).failed_validations == 0

    results = [validate(wrong_pin(provider)) for _ in range(4)]

    assert [r.outcome for r in results] == [ValidationOutcome.MISMATCHED] * 4
    assert results[-1].locked_until is None
    pins = AccountPins.objects.get(user=provider)
    assert pins.failed_validations == 4 and pins.validation_locked_until is None
    # The count still runs: the fifth in a row locks.
    assert validate(wrong_pin(provider)).locked_until is not None


# Committed transactions, as in production: ten thousand savepoints inside one test
# transaction would overflow PostgreSQL's subtransaction cache and measure that instead.
def test_fail_closed_when_the_audit_event_cannot_be_written(provider, agent, password, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    pin = current_pin(provider)
    monkeypatch.setattr("audit.hashing.row_hash", broken)
    with pytest.raises(RuntimeError):
        services.support_pin_reveal(acting_user=provider, ip=None)
    with pytest.raises(RuntimeError):
        support_pin_validate(acting_user=agent, account=provider, pin=pin, ip=None)
    with pytest.raises(RuntimeError):
        support_pin_validate(acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None)
    pins = AccountPins.objects.get(user=provider)
    assert pins.failed_validations == 0
    assert current_pin(provider) == pin


def test_the_service_refuses_a_trivial_app_pin_too(provider):
    before = current_pin(provider, "app_pin")
    with pytest.raises(services.WeakAppPin, match="it repeats one digit"):
        services.app_pin_change(acting_user=provider, new_app_pin="5555", ip=None)
    assert current_pin(provider, "app_pin") == before


UP, DOWN = "01234567890123", "98765432109876"  # runs a keypad user types, wrapping past 9 and 0


@given(st.text(alphabet="0123456789", min_size=4, max_size=4))
def test_app_pin_weakness_refuses_exactly_repeats_and_runs(pin):
    trivial = len(set(pin)) == 1 or pin in UP or pin in DOWN
    assert (services.app_pin_weakness(pin) is not None) == trivial


def test_the_lock_mail_says_until_when_in_the_owners_own_zone(
    agent, provider, django_capture_on_commit_callbacks
):
    from zoneinfo import ZoneInfo

    provider.time_zone = "Australia/Lord_Howe"  # a half-hour daylight-saving shift
    provider.save(update_fields=["time_zone"])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            result = support_pin_validate(
                acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
            )
    until = result.locked_until.astimezone(ZoneInfo("Australia/Lord_Howe"))
    [message] = sent_mail()
    assert f"Validation is locked until {until:%m/%d/%Y %I:%M %p} {until.tzname()}." in (
        message.body
    )
    assert "UTC" not in message.body


def test_an_owner_whose_zone_the_tz_database_dropped_is_still_locked_and_told_in_utc(
    agent, provider, django_capture_on_commit_callbacks
):
    """A mail's zone must not fail the lock it tells of: that would leave guessing open."""
    User.objects.filter(pk=provider.pk).update(time_zone="Mars/Olympus")
    provider.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            result = support_pin_validate(
                acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
            )
    assert result.locked_until is not None
    [message] = sent_mail()
    assert " UTC." in message.body
