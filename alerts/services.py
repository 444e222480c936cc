"""Raising alerts (the rules' findings) and acknowledging them. Every step is audited.

When rules run: `alerts_evaluate` runs every rule; `manage.py alerts_evaluate`
calls it once a minute from a systemd timer or cron (docs/audit.md). The one
rule whose story needs an answer at once, an agent's spray of failed Support
PIN validations, is also checked right after each failed validation commits
(`alert_agent_failures_check`, from `support_pin.services` with
`transaction.on_commit`): two small indexed reads (the agent's previous
alert, the count of its failures in the hour; about 2 ms on SQLite, 5 ms on
PostgreSQL here), after the validation's transaction and its audit chain lock
have ended, so the audit write path pays nothing.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from alerts import rules
from alerts.models import Alert
from alerts.rules import Finding
from audit import kinds
from audit.services import audit_event_record
from ehr.links import absolute_url
from ehr.moments import shown_at
from ehr.policies import can_acknowledge_alert
from outbox.services import mail_enqueue_each_zone

logger = logging.getLogger(__name__)


def alert_raise(*, finding: Finding) -> Alert | None:
    """Record the finding as an alert, its `alert.raised` event and its mail, in one transaction.

    Return None when its occurrence already raised an alert (the unique
    `dedupe_key`: a second evaluator, at the same time or later, writes
    nothing). A crash anywhere before the commit leaves nothing half done:
    the next evaluation finds the occurrence again and raises it then.
    """
    alert = Alert(
        rule=finding.rule,
        dedupe_key=finding.dedupe_key[:200],
        subject_key=finding.subject_key,
        practice_id=finding.practice_id,
        subject=finding.subject,
        subject_label=finding.subject_label[:200],
        report_username=finding.report_username,
        summary=finding.summary[:500],
        observed=finding.observed,
        threshold=finding.threshold,
        window_start=finding.window_start,
        window_end=finding.window_end,
        raised_at=timezone.now(),
        event_ids=finding.event_ids,
    )
    if Alert.objects.filter(dedupe_key=alert.dedupe_key).exists():
        return None
    try:
        with transaction.atomic():
            alert.full_clean(exclude=["dedupe_key"])  # the unique key: the insert decides
            alert.save()
            _mail_raised(alert)
            # Last: the chain stays locked from the event to the commit.
            audit_event_record(
                kind=kinds.ALERT_RAISED,
                acting_user=None,
                account=alert.subject,
                practice=alert.practice,
                ip=None,
                params={"alert": alert.pk, "summary": alert.summary},
                data={
                    "alert": alert.pk,
                    "rule": alert.rule,
                    "observed": alert.observed,
                    "threshold": alert.threshold,
                },
            )
    except IntegrityError:
        if Alert.objects.filter(dedupe_key=alert.dedupe_key).exists():
            return None  # another evaluator raised it between the check and the insert
        raise
    return alert


def _recipients(alert: Alert) -> list[User]:
    """The practice's compliance officers (practice alerts) and the platform auditors.

    The account the alert is about is never told of it.
    """
    watchers = Q(groups__name=Role.PLATFORM_AUDITOR.value)
    if alert.practice_id is not None:
        watchers |= Q(groups__name=Role.COMPLIANCE_OFFICER.value, practice_id=alert.practice_id)
    people = User.objects.filter(watchers, is_active=True).exclude(email="")
    if alert.subject_id is not None:
        people = people.exclude(pk=alert.subject_id)
    return list(people.distinct())


def _mail_raised(alert: Alert) -> None:
    """Tell the watchers that an alert waits; no names, no PIN, no patient: a link to it."""
    link = absolute_url(None, reverse("alert_detail", kwargs={"alert_id": alert.pk}))
    where = f" in practice {alert.practice.name}" if alert.practice_id else ""

    def body(time_zone: ZoneInfo) -> str:
        return (
            f"An alert was raised{where}: {alert.get_rule_display()}.\n\n"
            f"Observed {alert.observed} (the alert is raised at {alert.threshold}), "
            f"from {shown_at(alert.window_start, time_zone)}.\n\n"
            "Open the alert for who and what it concerns, the audit events behind it, "
            f"and to acknowledge it:\n{link}\n"
        )

    mail_enqueue_each_zone(
        people=_recipients(alert),
        subject=f"Alert #{alert.pk}: {alert.get_rule_display()}",
        body=body,
    )


@dataclass(frozen=True)
class Evaluation:
    raised: list[Alert]
    failed: list[str]  # rules that could not be evaluated (their errors are logged)


def alerts_evaluation_run(*, now: datetime | None = None) -> Evaluation:
    """Run every rule once; return the alerts raised and the rules that failed.

    A rule that fails is logged and the others still run; the next run tries it again.
    """
    now = now or timezone.now()
    raised, failed = [], []
    for detector in rules.DETECTORS:
        try:
            for finding in detector(now):
                alert = alert_raise(finding=finding)
                if alert is not None:
                    raised.append(alert)
        except Exception:
            logger.exception("alert rule %s could not be evaluated", detector.__name__)
            failed.append(detector.__name__)
    return Evaluation(raised, failed)


def alerts_evaluate(*, now: datetime | None = None) -> list[Alert]:
    """Run every rule once; return the alerts raised (see `alerts_evaluation_run`)."""
    return alerts_evaluation_run(now=now).raised


def alert_agent_failures_check(*, agent_id: int) -> Alert | None:
    """Raise the spray alert for this agent if its failed validations reached the threshold."""
    finding = rules.count_finding(rules.AGENT_FAILURES, agent_id, timezone.now())
    return alert_raise(finding=finding) if finding is not None else None


def alert_acknowledge(*, alert: Alert, acting_user: User, note: str, ip: str | None) -> Alert:
    """Record that `acting_user` looked at the alert, with their note; once."""
    if not can_acknowledge_alert(acting_user, alert):
        raise PermissionDenied(
            "only those who see an alert acknowledge it, and never one about their own account"
        )
    note = " ".join(note.split())
    if not note:
        raise ValidationError(
            "Write a note on what you checked before acknowledging the alert.", code="note"
        )
    with transaction.atomic():
        # Only the alert's row is locked: its subject and practice may be absent (outer joins).
        locked = Alert.objects.select_for_update(of=("self",)).select_related("subject", "practice")
        locked = locked.get(pk=alert.pk)
        if locked.acknowledged_at is not None:
            raise ValidationError(
                f"Alert #{locked.pk} was already acknowledged.", code="acknowledged"
            )
        locked.acknowledged_by, locked.acknowledged_at = acting_user, timezone.now()
        locked.acknowledgement_note = note
        locked.full_clean(exclude=["dedupe_key"])
        locked.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement_note"])
        audit_event_record(
            kind=kinds.ALERT_ACKNOWLEDGED,
            acting_user=acting_user,
            account=locked.subject,
            practice=locked.practice,
            ip=ip,
            params={"alert": locked.pk, "note": note[:500]},
            data={"alert": locked.pk},
        )
    return locked
