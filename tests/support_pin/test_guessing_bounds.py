"""Guessing a Support PIN is bounded for the life of the PIN, and per agent across accounts."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEvent
from support_pin import conf, services
from support_pin.models import AccountPins
from support_pin.services import ValidationOutcome, support_pin_validate
from tests.factories import confirm_identity, make_practice, make_user, sent_mail
from tests.support_pin.helpers import current_pin, wrong_pin

COMPARED = {ValidationOutcome.MATCHED, ValidationOutcome.MISMATCHED}


def validate(agent, account, pin):
    return support_pin_validate(acting_user=agent, account=account, pin=pin, ip=None).outcome


# Each validation commits, as in production: one transaction holding ten thousand updates of
# the audit chain head would make PostgreSQL walk ever longer row-version chains.
@pytest.mark.django_db(transaction=True)
def test_ten_thousand_guesses_get_ten_compares_for_the_life_of_a_pin(provider, agent):
    """A caller who keeps calling, half an hour apart or days apart, gets 10 guesses in all:
    5 before the first lock (which refuses every guess after, compared to nothing), 5 more
    once it has passed, then none, whatever the clock says."""
    compares, before_first_lock = 0, None
    secret = current_pin(provider)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for n in range(10_000):
            guess = f"{n:04d}"
            if guess == secret:
                continue  # the attacker does not know it: every guess here is wrong
            outcome = validate(agent, provider, guess)
            if outcome in COMPARED:
                compares += 1
                secret = current_pin(provider)  # a lock replaces it
            if outcome is ValidationOutcome.LOCKED:
                if before_first_lock is None:
                    before_first_lock = compares
                clock.shift(timedelta(minutes=31))
            if outcome is ValidationOutcome.AGENT_LOCKED:
                pytest.fail("the per-agent limit is not the point here")
            if n % 500 == 499:
                clock.shift(timedelta(days=1))
    assert before_first_lock == conf.VALIDATION_LOCK_AFTER == 5
    assert compares == conf.VALIDATION_LOCK_AFTER * conf.VALIDATION_BLOCK_AFTER_LOCKS == 10
    assert validate(agent, provider, current_pin(provider)) is ValidationOutcome.BLOCKED
    details = list(AuditEvent.objects.values_list("details", flat=True))
    assert (
        "Support PIN validation blocked for user dorothy Ludwig after 2 locks in a row: "
        "the owner must generate a new PIN"
    ) in details


def test_the_owner_is_told_each_time_and_a_new_pin_unblocks(
    provider, agent, django_capture_on_commit_callbacks
):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                for _ in range(conf.VALIDATION_LOCK_AFTER):
                    validate(agent, provider, wrong_pin(provider))
            clock.shift(timedelta(minutes=31))
        assert len(sent_mail()) == 2
        assert "can no longer validate" in sent_mail()[1].body
        assert validate(agent, provider, current_pin(provider)) is ValidationOutcome.BLOCKED
        # A rotation by anyone else (break-glass) does not lift the block; the owner's does.
        services.support_pin_generate(account=provider, acting_user=agent, ip=None)
        assert validate(agent, provider, current_pin(provider)) is ValidationOutcome.BLOCKED
        services.support_pin_generate(account=provider, acting_user=provider, ip=None)
        assert validate(agent, provider, current_pin(provider)) is ValidationOutcome.MATCHED
    assert AuditEvent.objects.filter(kind="support_pin.validation_unblocked_by_owner").count() == 1


def test_a_success_between_locks_starts_the_count_again(provider, agent):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(conf.VALIDATION_LOCK_AFTER):
            validate(agent, provider, wrong_pin(provider))
        clock.shift(timedelta(minutes=31))
        assert validate(agent, provider, current_pin(provider)) is ValidationOutcome.MATCHED
        for _ in range(conf.VALIDATION_LOCK_AFTER):
            validate(agent, provider, wrong_pin(provider))
        clock.shift(timedelta(minutes=31))
        assert validate(agent, provider, wrong_pin(provider)) is ValidationOutcome.MISMATCHED


def block(agent, account):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(conf.VALIDATION_BLOCK_AFTER_LOCKS):
            for _ in range(conf.VALIDATION_LOCK_AFTER):
                validate(agent, account, wrong_pin(account))
            clock.shift(timedelta(minutes=31))


def test_a_practice_admin_unblocks_validation_from_the_staff_page(
    provider, agent, practice, other_provider
):
    block(agent, provider)
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    client = Client()
    client.force_login(admin)
    confirm_identity(client)
    assert "PIN validation blocked" in client.get("/practice/staff/").content.decode()
    assert client.post(f"/practice/staff/{other_provider.pk}/unblock-pin/").status_code == 404
    response = client.post(f"/practice/staff/{provider.pk}/unblock-pin/")
    assert response.status_code == 302
    assert validate(agent, provider, current_pin(provider)) is ValidationOutcome.MATCHED
    event = AuditEvent.objects.get(kind="support_pin.validation_unblocked")
    assert event.actor_id == admin.pk and event.account_id == provider.pk


def test_the_console_says_why_a_blocked_account_is_refused(provider, agent):
    block(agent, provider)
    client = Client()
    client.force_login(agent)
    response = client.post(
        "/support/validate/pin/",
        {"account": provider.pk, "pin": current_pin(provider)},
        follow=True,
    )
    page = response.content.decode()
    assert "blocked until its owner generates a new PIN" in page


def test_a_spray_over_many_accounts_stops_at_the_agent_limit(
    agent, django_capture_on_commit_callbacks
):
    practices = [make_practice(), make_practice()]
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practices[0], username="officer")
    make_user(Role.PLATFORM_AUDITOR, username="auditor")
    accounts = [make_user(Role.NURSE, practice=practices[n % 2]) for n in range(200)]
    outcomes = []
    with django_capture_on_commit_callbacks(execute=True):
        for account in accounts:
            outcomes.append(validate(agent, account, wrong_pin(account)))
    compared = [o for o in outcomes if o in COMPARED]
    assert len(compared) == conf.AGENT_FAILURE_LIMIT == 20
    assert set(outcomes[20:]) == {ValidationOutcome.AGENT_LOCKED}
    assert AuditEvent.objects.filter(kind="support_pin.agent_locked").count() == 1
    assert AuditEvent.objects.filter(kind="support_pin.validation_refused_agent").count() == 180
    [notice] = [m for m in sent_mail() if "refused further PIN validations" in m.subject]
    assert set(notice.to) == {officer.email, "auditor@example.org"}
    # Nobody's PIN was guessed at more than once: every account's count stays below its lock.
    with time_machine.travel(timezone.now() + conf.AGENT_FAILURE_WINDOW + timedelta(seconds=1)):
        assert validate(agent, accounts[-1], wrong_pin(accounts[-1])) is (
            ValidationOutcome.MISMATCHED
        )


def log_reads(queries) -> list[str]:
    """The statements of `queries` that read the audit log."""
    table = AuditEvent._meta.db_table
    return [
        query["sql"]
        for query in queries
        if query["sql"].lstrip().upper().startswith("SELECT") and table in query["sql"]
    ]


def test_a_wrong_pin_reads_the_agents_failures_from_the_log_once(provider, agent):
    """The count read before the comparison, plus the failure just made, is the count after
    it: the agent's validations are taken one at a time, so the log is not read again."""
    guess = wrong_pin(provider)
    with CaptureQueriesContext(connection) as queries:
        assert validate(agent, provider, guess) is ValidationOutcome.MISMATCHED
    assert len(log_reads(queries.captured_queries)) == 1


def test_the_agent_row_is_locked_where_the_database_has_row_locks(provider, agent):
    """PostgreSQL locks the agent's row, so its validations are taken one at a time; SQLite
    has no row locks (its IMMEDIATE transaction serializes every writer), so nothing is
    read for a lock there."""
    guess = wrong_pin(provider)
    table = agent._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert validate(agent, provider, guess) is ValidationOutcome.MISMATCHED
    agent_reads = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]
    if connection.features.has_select_for_update:
        assert len(agent_reads) == 1 and agent_reads[0].endswith("FOR NO KEY UPDATE")
    else:
        assert agent_reads == []


def test_the_agent_failures_in_the_window_are_counted_up_to_the_limit(provider, agent):
    """Failures older than the window do not count; failures of other agents do not count."""
    other = make_user(Role.SUPPORT_AGENT, username="other_agent")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(3):
            validate(other, provider, wrong_pin(provider))
        for _ in range(2):
            validate(agent, provider, wrong_pin(provider))
        assert agent_failures(agent, provider) == 2
        assert agent_failures(other, provider) == 3
        clock.shift(conf.AGENT_FAILURE_WINDOW)
        assert agent_failures(agent, provider) == 0


def agent_failures(agent, account) -> int:
    with transaction.atomic():
        _, count = services._pins_for_validation(account=account, agent=agent, now=timezone.now())
    return count


def test_the_pin_row_and_the_agents_failures_are_read_in_one_statement(provider, agent):
    """Once the agent's row is locked, one statement reads (and locks) the account's PIN
    row and counts the agent's failures: validations wait for it, a round trip less."""
    guess = wrong_pin(provider)
    pins_table = AccountPins._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert validate(agent, provider, guess) is ValidationOutcome.MISMATCHED
    reads = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("SELECT") and pins_table in query["sql"]
    ]
    assert len(reads) == 1
    assert log_reads([{"sql": reads[0]}]) == reads


def test_the_staff_page_shows_the_lock_after_wrong_pins_while_it_lasts(provider, agent, practice):
    for _ in range(conf.VALIDATION_LOCK_AFTER):
        validate(agent, provider, wrong_pin(provider))
    until = AccountPins.objects.get(user=provider).validation_locked_until
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    client = Client()
    client.force_login(admin)
    confirm_identity(client)
    page = client.get("/practice/staff/").content.decode()
    local = timezone.localtime(until, timezone.zoneinfo.ZoneInfo(admin.time_zone))
    assert f"PIN validation locked until {local:%I:%M %p %Z}" in page
    with time_machine.travel(until + timedelta(seconds=1)):
        page = client.get("/practice/staff/").content.decode()
    assert "PIN validation locked" not in page


def test_the_console_shows_a_blocked_account_without_a_pin_box(provider, agent):
    """Once its lock has passed, a blocked account still checks no PIN: the console says so
    when the account is chosen, and offers nothing to type."""
    block(agent, provider)
    later = timezone.now() + 3 * (
        conf.VALIDATION_LOCK_FOR + timedelta(minutes=1)
    )  # past block()'s locks
    with time_machine.travel(later, tick=False):
        client = Client()
        client.force_login(agent)
        page = client.get("/support/validate/", {"account": provider.pk}).content.decode()
    assert "blocked until its owner generates a new PIN" in page
    assert ">Validate</button>" not in page
