"""Every rule: what raises an alert, what does not, and never twice for one occurrence.

State is built through the services; the clock is moved with time-machine.
"""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from accounts.roles import Role
from alerts import services
from alerts.models import Alert, Rule
from alerts.services import alert_raise, alerts_evaluate
from audit import kinds
from audit.chain import Problem
from audit.integrity import audit_verification_record
from audit.models import AuditChain, AuditEvent
from audit.services import audit_event_record
from audit.verification import VerifyResult
from break_glass.services import break_glass_open, break_glass_review
from outbox import audit_stream
from outbox.models import AuditCursor, OutboxItem
from support_pin.services import support_pin_reveal
from tests.alerts.conftest import fail
from tests.factories import make_user, sent_mail

REASON = "Caller lost her phone and cannot read her Support PIN; verified by callback."


def raised_events(alert):
    return AuditEvent.objects.filter(kind=kinds.ALERT_RAISED.code, data__alert=alert.pk)


def test_an_agents_spray_raises_one_alert_after_the_failure_that_reaches_the_threshold(
    settings, agent, accounts, officer, other_officer, auditor, django_capture_on_commit_callbacks
):
    settings.ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        start = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            fail(agent, accounts[0])
            clock.shift(timedelta(minutes=10))
            fail(agent, accounts[1])
        assert not Alert.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            fail(agent, accounts[2])  # the third within the hour: raised on commit
        alert = Alert.objects.get()
        assert alert.rule == Rule.AGENT_FAILED_VALIDATIONS
        assert (alert.subject, alert.practice, alert.observed, alert.threshold) == (
            agent,
            accounts[0].practice,
            3,
            3,
        )
        assert alert.window_start == start and alert.window_end == start + timedelta(hours=1)
        failed = AuditEvent.objects.filter(kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code)
        assert sorted(alert.event_ids) == sorted(failed.values_list("id", flat=True))
        event = raised_events(alert).get()
        assert event.details.startswith(f"Alert #{alert.pk} raised: Support agent ")
        assert event.practice_id == alert.practice_id and event.account_id == agent.pk

        # Failing on within the same window, and the periodic run: the same occurrence.
        with django_capture_on_commit_callbacks(execute=True):
            fail(agent, accounts[3])
        assert alerts_evaluate() == []
        assert Alert.objects.count() == 1

        # A window later, three new failures are a new occurrence.
        clock.shift(timedelta(minutes=55))
        for account in accounts[:3]:
            fail(agent, account)
        [second] = alerts_evaluate()
        assert second.window_start == timezone.now()
        assert second.observed == 3 and second.pk != alert.pk

    # Mailed to the practice's compliance officers and the platform auditors, never the
    # agent or another practice; no names in the text, a link to the alert.
    messages = [m for m in sent_mail() if m.subject.startswith(f"Alert #{alert.pk}:")]
    assert len(messages) == 1
    assert sorted(messages[0].to) == ["auditor@example.org", "compliance@example.org"]
    assert f"/audit/alerts/{alert.pk}/" in messages[0].body
    assert agent.display_name not in messages[0].body


def test_an_agent_trying_two_practices_is_the_platform_auditors_alert(
    settings, agent, accounts, other_provider, officer, auditor
):
    settings.ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = 2
    fail(agent, accounts[0])
    fail(agent, other_provider)
    [alert] = alerts_evaluate()
    assert alert.practice is None
    assert raised_events(alert).get().chain.kind == AuditChain.Kind.PLATFORM
    assert [m.to for m in sent_mail() if m.subject.startswith("Alert")] == [["auditor@example.org"]]


def test_support_pin_views_in_a_day(settings, provider, officer):
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        support_pin_reveal(acting_user=provider, ip=None)
        clock.shift(timedelta(hours=10))
        support_pin_reveal(acting_user=provider, ip=None)
        clock.shift(timedelta(hours=15))  # the first view is now more than a day old
        support_pin_reveal(acting_user=provider, ip=None)
        assert alerts_evaluate() == []
        clock.shift(timedelta(hours=1))
        support_pin_reveal(acting_user=provider, ip=None)
        [alert] = alerts_evaluate()
    assert (alert.rule, alert.subject, alert.practice, alert.observed) == (
        Rule.SUPPORT_PIN_VIEWS,
        provider,
        provider.practice,
        3,
    )
    assert alert.report_username == "dorothy"


def test_a_burst_of_sign_in_lockouts_in_a_practice(settings, practice, other_practice):
    settings.ALERT_SIGN_IN_LOCKOUTS_PER_PRACTICE = 2
    settings.ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES = 15
    users = [make_user(Role.NURSE, practice=practice) for _ in range(3)]
    elsewhere = make_user(Role.NURSE, practice=other_practice)

    def locked(user):
        audit_event_record(kind=kinds.SIGN_IN_LOCKED, acting_user=None, account=user, ip=None)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        locked(users[0])
        locked(elsewhere)  # another practice's lockout does not count here
        clock.shift(timedelta(minutes=20))
        locked(users[1])
        assert alerts_evaluate() == []
        clock.shift(timedelta(minutes=5))
        locked(users[2])
        [alert] = alerts_evaluate()
        assert alerts_evaluate() == []
    assert (alert.rule, alert.practice, alert.subject, alert.observed) == (
        Rule.SIGN_IN_LOCKOUTS,
        practice,
        None,
        2,
    )


def test_break_glass_left_unreviewed(agent, provider, officer, auditor):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        grant = break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
        )
        reviewed = break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
        )
        clock.shift(timedelta(hours=1))
        break_glass_review(
            grant=reviewed, acting_user=officer, outcome="justified", note="Called back.", ip=None
        )
        clock.shift(timedelta(hours=22))
        assert alerts_evaluate() == []
        clock.shift(timedelta(hours=2))
        [alert] = alerts_evaluate()
        assert alerts_evaluate() == []
    assert (alert.rule, alert.subject_key, alert.practice) == (
        Rule.BREAK_GLASS_UNREVIEWED,
        f"grant:{grant.pk}",
        provider.practice,
    )
    opened = AuditEvent.objects.get(kind=kinds.BREAK_GLASS_OPENED.code, data__break_glass=grant.pk)
    assert alert.event_ids[0] == opened.pk


def _verification(problem):
    return audit_verification_record(VerifyResult(10, 1, 0, None, 0, problem))


def test_a_failed_verification_is_the_platform_auditors_alert(officer, auditor):
    _verification(None)  # intact: nothing
    assert alerts_evaluate() == []
    failed = _verification(Problem("its hash does not match", chain_id=1, seq=4))
    [alert] = alerts_evaluate()
    assert alerts_evaluate() == []
    assert (alert.rule, alert.practice, alert.subject_key) == (
        Rule.VERIFICATION_FAILED,
        None,
        f"verification:{failed.pk}",
    )
    found = AuditEvent.objects.get(kind=kinds.AUDIT_VERIFICATION_FAILED.code)
    assert alert.event_ids == [found.pk]
    assert [m.to for m in sent_mail() if m.subject.startswith("Alert")] == [["auditor@example.org"]]


def test_streaming_lag_raises_once_per_spell_behind(settings, tmp_path, provider):
    settings.AUDIT_SYSLOG_URL = "tls://127.0.0.1:6514"
    settings.AUDIT_SYSLOG_CA_FILE = str(tmp_path / "ca.pem")
    settings.ALERT_STREAM_LAG_SECONDS = 300
    destination = audit_stream.ensure_destination()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        support_pin_reveal(acting_user=provider, ip=None)  # an event the stream has not sent
        clock.shift(timedelta(seconds=200))
        assert alerts_evaluate() == []
        clock.shift(timedelta(seconds=200))
        [alert] = alerts_evaluate()
        assert alert.rule == Rule.STREAM_LAG and alert.practice is None
        clock.shift(timedelta(seconds=60))
        assert alerts_evaluate() == []  # still the same spell: seen later, not raised again
        alert.refresh_from_db()
        assert alert.window_end == timezone.now()

        # The stream catches up with everything, then falls behind again: a new spell.
        for chain_id, seq in AuditChain.objects.values_list("pk", "seq"):
            AuditCursor.objects.update_or_create(
                destination=destination, chain_id=chain_id, defaults={"seq": seq}
            )
        assert alerts_evaluate() == []
        clock.shift(timedelta(seconds=60))
        support_pin_reveal(acting_user=provider, ip=None)
        clock.shift(timedelta(seconds=400))
        [second] = alerts_evaluate()
    assert second.pk != alert.pk


def test_events_left_unsigned_raise_once_per_spell(settings, provider, auditor):
    """The checkpoint timer stopped (or its signer refuses): events wait unsigned."""
    settings.ALERT_CHECKPOINT_LAG_SECONDS = 300
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call_command("audit_checkpoint")
        assert alerts_evaluate() == []
        support_pin_reveal(acting_user=provider, ip=None)
        waiting = AuditEvent.objects.get(kind=kinds.SUPPORT_PIN_VIEWED.code)
        clock.shift(timedelta(seconds=200))
        assert alerts_evaluate() == []
        clock.shift(timedelta(seconds=200))
        [alert] = alerts_evaluate()
        assert (alert.rule, alert.practice, alert.subject_key) == (
            Rule.CHECKPOINT_LAG,
            None,
            "checkpoints",
        )
        assert alert.event_ids == [waiting.pk]
        assert alert.summary == (
            "Audit events have waited 400 seconds for a signed checkpoint (alert at 300)"
        )
        clock.shift(timedelta(seconds=60))
        assert alerts_evaluate() == []  # the same spell: seen later, not raised again
        # Signed (the alert's own event too), then unsigned again for long: a new spell.
        call_command("audit_checkpoint")
        assert alerts_evaluate() == []
        clock.shift(timedelta(seconds=60))
        support_pin_reveal(acting_user=provider, ip=None)
        clock.shift(timedelta(seconds=400))
        [second] = alerts_evaluate()
    assert second.pk != alert.pk
    assert [m.to for m in sent_mail() if m.subject.startswith("Alert")] == [
        ["auditor@example.org"],
        ["auditor@example.org"],
    ]


def test_an_alert_its_event_and_its_mail_are_written_together_or_not_at_all(
    settings, monkeypatch, provider, officer
):
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=provider, ip=None)

    def crash(**kwargs):
        raise RuntimeError("the process died before the commit")

    monkeypatch.setattr(services, "audit_event_record", crash)
    mails_before = OutboxItem.objects.count()
    assert alerts_evaluate() == []  # the rule's failure is logged; nothing half written
    assert not Alert.objects.exists() and OutboxItem.objects.count() == mails_before
    monkeypatch.undo()
    [alert] = alerts_evaluate()  # the next run finds the same occurrence
    assert raised_events(alert).count() == 1
    assert OutboxItem.objects.count() == mails_before + 1


def test_the_command_runs_every_rule_once(settings, monkeypatch, provider):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from alerts import rules

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=provider, ip=None)
    out = StringIO()
    call_command("alerts_evaluate", stdout=out)
    alert = Alert.objects.get()
    assert f"Raised alert #{alert.pk}: Support PIN viewed unusually often" in out.getvalue()
    call_command("alerts_evaluate", stdout=out)
    assert out.getvalue().endswith("Raised 0 alert(s).\n")

    def broken(now):
        raise RuntimeError("the stream's cursors could not be read")
        yield

    monkeypatch.setattr(rules, "DETECTORS", (*rules.DETECTORS, broken))
    with pytest.raises(CommandError, match="Rules not evaluated: broken"):
        call_command("alerts_evaluate", stdout=out)


def test_the_same_finding_twice_raises_one_alert(settings, provider):
    from alerts import rules

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=provider, ip=None)
    finding = rules.count_finding(rules.PIN_VIEWS, provider.pk, timezone.now())
    assert alert_raise(finding=finding) is not None
    assert alert_raise(finding=finding) is None
    assert Alert.objects.count() == 1
    assert AuditEvent.objects.filter(kind=kinds.ALERT_RAISED.code).count() == 1


@pytest.mark.parametrize("value", ["0", "ten"])
def test_thresholds_must_be_whole_numbers_of_one_or_more(value):
    from tests.ehr.test_settings import STRONG, _start

    result = _start({"SECRET_KEY": STRONG, "ALERT_SUPPORT_PIN_VIEWS_PER_DAY": value})
    assert result.returncode != 0
    assert "ALERT_SUPPORT_PIN_VIEWS_PER_DAY" in result.stderr


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_evaluators_running_at_once_raise_one_alert(settings, provider, officer):
    from tests.concurrency import run_together

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=provider, ip=None)
    mails_before = OutboxItem.objects.count()
    raised, errors = run_together(lambda _: alerts_evaluate(), range(4))
    assert errors == []
    assert sum(len(alerts) for alerts in raised) == 1
    assert Alert.objects.count() == 1
    assert AuditEvent.objects.filter(kind=kinds.ALERT_RAISED.code).count() == 1
    assert OutboxItem.objects.count() == mails_before + 1


def test_a_practice_admin_naming_a_compliance_officer_is_the_platform_auditors_alert(
    practice, officer, auditor
):
    """That officer would review the admin's own alerts and break-glass access."""
    from accounts.services import staff_account_create, user_role_change

    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="pam")
    made = staff_account_create(
        acting_user=admin,
        username="ollie",
        email="ollie@ludwig-family.example",
        first_name="Ollie",
        last_name="Officer",
        role=Role.COMPLIANCE_OFFICER,
        ip=None,
        set_password_url=lambda user: "https://ehr.example.org/set/",
    )
    nurse = make_user(Role.NURSE, practice=practice, username="nina")
    user_role_change(account=nurse, role=Role.COMPLIANCE_OFFICER, acting_user=admin, ip=None)
    user_role_change(account=nurse, role=Role.NURSE, acting_user=admin, ip=None)  # not one
    raised = alerts_evaluate()
    assert alerts_evaluate() == []  # once each
    assert sorted((a.rule, a.subject_id, a.practice_id) for a in raised) == sorted(
        [(Rule.OFFICER_NAMED, made.pk, None), (Rule.OFFICER_NAMED, nurse.pk, None)]
    )
    assert {a.summary for a in raised} == {
        f"pam (Test User) made user Ollie Officer a compliance officer of {practice.name}",
        f"pam (Test User) made user Test User a compliance officer of {practice.name}",
    }
    mailed = [m.to for m in sent_mail() if m.subject.startswith("Alert")]
    assert mailed == [["auditor@example.org"]] * 2  # the platform's auditors, not the practice
    # Officers the platform names (demo data, the admin, the console) raise nothing.
    make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="olga")
    assert alerts_evaluate() == []


def test_an_alert_mail_gives_its_time_in_each_readers_own_zone(
    settings, agent, accounts, officer, auditor
):
    """A mail is written outside any request: each reader gets the window's start in their
    own zone, as their screens write it, one mail per zone among them."""
    from zoneinfo import ZoneInfo

    from django.utils.dateformat import format as date_format

    auditor.time_zone = "Asia/Kolkata"
    auditor.save(update_fields=["time_zone"])
    settings.ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = 2
    fail(agent, accounts[0])
    fail(agent, accounts[1])
    [alert] = alerts_evaluate()
    mails = {tuple(m.to): m.body for m in sent_mail() if m.subject.startswith("Alert")}
    assert set(mails) == {("auditor@example.org",), ("compliance@example.org",)}
    for address, zone, abbreviation in (
        ("auditor@example.org", "Asia/Kolkata", "IST"),
        ("compliance@example.org", officer.time_zone, None),
    ):
        start = alert.window_start.astimezone(ZoneInfo(zone))
        expected = date_format(start, "m/d/Y h:i A T")
        assert f"from {expected}." in mails[(address,)]
        assert abbreviation is None or expected.endswith(abbreviation)
        assert "UTC" not in mails[(address,)]


def test_an_alerts_report_link_lists_the_kind_it_counted_not_its_whole_type(
    settings, provider, officer
):
    """Following "the events behind it" lists the views counted, not the owner's other
    events of the same type (a new PIN, a profile change)."""
    from django.test import Client

    from alerts.selectors import alert_report_url
    from support_pin.services import support_pin_generate

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 3
    support_pin_generate(account=provider, acting_user=provider, ip=None)
    for _ in range(3):
        support_pin_reveal(acting_user=provider, ip=None)
    [alert] = alerts_evaluate()
    client = Client()
    client.force_login(officer)
    with timezone.override(officer.time_zone):
        page = client.get(alert_report_url(alert)).content.decode()
    assert page.count("Support PIN viewed for user dorothy") == 3
    rows = page.split("<tbody")[1].split("</tbody>")[0]
    assert "Generated New PIN" not in rows and "Account created" not in rows


def test_an_address_two_watchers_share_gets_one_alert_mail(settings, agent, accounts, officer):
    auditor = make_user(Role.PLATFORM_AUDITOR, username="sec")
    auditor.email, auditor.time_zone = officer.email, "Europe/London"  # one mailbox, two zones
    auditor.save(update_fields=["email", "time_zone"])
    settings.ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = 2
    fail(agent, accounts[0])
    fail(agent, accounts[1])
    assert len(alerts_evaluate()) == 1
    assert [m.to for m in sent_mail() if m.subject.startswith("Alert")] == [[officer.email]]


@pytest.mark.parametrize(
    "rule, observed, kept, left_out",
    [
        (Rule.SUPPORT_PIN_VIEWS, 60, 50, True),  # counted past the ids kept
        (Rule.SUPPORT_PIN_VIEWS, 12, 12, False),
        (Rule.CHECKPOINT_LAG, 600, 1, False),  # seconds waited, not events
        (Rule.STREAM_LAG, 400, 1, False),
        (Rule.BREAK_GLASS_UNREVIEWED, 30, 1, False),  # hours open
    ],
)
def test_only_an_alert_that_counts_events_says_some_are_not_listed(rule, observed, kept, left_out):
    alert = Alert(rule=rule, observed=observed, event_ids=list(range(kept)))
    assert alert.events_left_out is left_out
