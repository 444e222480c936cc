"""The rules: what each one reads and when it finds an occurrence worth an alert.

Each detector returns `Finding`s; `alerts.services.alert_raise` turns a finding
into an alert once (its `dedupe_key` is unique). A finding names its
occurrence so that evaluating a rule again, or in two processes at once,
finds the same key:

- Counting rules (an agent's failed validations in an hour, one account's
  Support PIN views in a day, a practice's sign-in lockouts in a burst) count a
  subject's events of one kind in the window ending now. An occurrence starts
  at its first counted event and covers one window from there; events inside
  it belong to it, so an agent who keeps failing after the alert raises no
  second one until a new window's worth of failures reaches the threshold
  again after the first window ended.
- One alert per break-glass grant left unreviewed, per failed verification.
- One alert per compliance officer a practice admin names (the platform's auditors).
- Streaming lag and checkpoint lag: one alert per spell behind. A spell lasts
  while the oldest event not yet sent (not yet signed) was written before the
  alert last saw the wait (it cannot have caught up in between: events go out,
  and are signed, in order).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import CharField, Count, Exists, Q, Value
from django.db.models.functions import Cast, Concat

from accounts.models import Practice, User
from accounts.roles import Role
from alerts import conf
from alerts.models import Alert, Rule
from audit import kinds
from audit.checkpoints import checkpoint_leaves
from audit.kinds import BREAK_GLASS_CODES
from audit.models import AuditChain, AuditCheckpoint, AuditEvent, AuditVerification
from break_glass.models import BreakGlassGrant
from outbox import audit_stream
from outbox.models import Destination


@dataclass(frozen=True)
class Finding:
    rule: Rule
    subject_key: str
    dedupe_key: str
    practice_id: int | None
    subject: User | None
    subject_label: str
    report_username: str
    summary: str
    observed: int
    threshold: int
    window_start: datetime
    window_end: datetime
    event_ids: list[int]


def _previous_end(rule: Rule, subject_key: str) -> datetime | None:
    """Where the rule's previous alert for the subject stopped covering events."""
    return (
        Alert.objects.filter(rule=rule, subject_key=subject_key)
        .order_by("-window_end")
        .values_list("window_end", flat=True)
        .first()
    )


# Counting rules


@dataclass(frozen=True)
class CountRule:
    rule: Rule
    kind: str
    by: str  # the event's column that names the subject
    threshold: Callable[[], int]
    window: Callable[[], timedelta]

    def subject_key(self, subject_id: int) -> str:
        return f"{'practice' if self.by == 'practice_id' else 'user'}:{subject_id}"


AGENT_FAILURES = CountRule(
    Rule.AGENT_FAILED_VALIDATIONS,
    kinds.SUPPORT_PIN_VALIDATION_FAILED.code,
    "actor_id",
    conf.agent_failures_threshold,
    lambda: timedelta(hours=1),
)
PIN_VIEWS = CountRule(
    Rule.SUPPORT_PIN_VIEWS,
    kinds.SUPPORT_PIN_VIEWED.code,
    "account_id",
    conf.pin_views_threshold,
    lambda: timedelta(days=1),
)
LOCKOUTS = CountRule(
    Rule.SIGN_IN_LOCKOUTS,
    kinds.SIGN_IN_LOCKED.code,
    "practice_id",
    conf.lockouts_threshold,
    conf.lockout_window,
)
COUNT_RULES = (AGENT_FAILURES, PIN_VIEWS, LOCKOUTS)


def count_candidates(rule: CountRule, now: datetime) -> list[int]:
    """Return the subjects with at least the threshold of events in the window ending now.

    One grouped count over the kind's index (kind, occurred_at); the per-subject
    check (`count_finding`) then leaves out what an earlier alert covered.
    """
    return list(
        AuditEvent.objects.filter(
            kind=rule.kind,
            occurred_at__gt=now - rule.window(),
            occurred_at__lte=now,
            **{f"{rule.by}__isnull": False},
        )
        .order_by()  # the model's ordering would join the GROUP BY
        .values(rule.by)
        .annotate(events=Count("id"))
        .filter(events__gte=rule.threshold())
        .values_list(rule.by, flat=True)
    )


def count_finding(rule: CountRule, subject_id: int, now: datetime) -> Finding | None:
    """Return the subject's occurrence if its events since the last alert reach the threshold."""
    threshold, window = rule.threshold(), rule.window()
    subject_key = rule.subject_key(subject_id)
    events = AuditEvent.objects.filter(
        kind=rule.kind, occurred_at__gt=now - window, occurred_at__lte=now, **{rule.by: subject_id}
    )
    previous_end = _previous_end(rule.rule, subject_key)
    if previous_end is not None:
        events = events.filter(occurred_at__gte=previous_end)
    count = events.count()
    if count < threshold:
        return None
    rows = list(
        events.order_by("occurred_at", "id").values_list("id", "occurred_at")[: conf.EVENT_IDS_KEPT]
    )
    start = rows[0][1]
    finding = {
        "rule": rule.rule,
        "subject_key": subject_key,
        "dedupe_key": f"{rule.rule}:{subject_key}:{start.isoformat()}",
        "observed": count,
        "threshold": threshold,
        "window_start": start,
        "window_end": start + window,
        "event_ids": [event_id for event_id, _ in rows],
    }
    if rule.by == "practice_id":
        practice = Practice.objects.get(pk=subject_id)
        minutes = int(window.total_seconds() // 60)
        return Finding(
            **finding,
            practice_id=practice.pk,
            subject=None,
            subject_label=practice.name,
            report_username="",
            summary=f"{count} sign-in lockouts in practice {practice.name} within {minutes} "
            f"minutes (alert at {threshold})",
        )
    user = User.objects.get(pk=subject_id)
    if rule.rule == Rule.AGENT_FAILED_VALIDATIONS:
        # The practices whose accounts the agent tried: one, and its compliance officers
        # see the alert; several, and it is the platform auditors' (they oversee agents).
        practices = set(
            events.exclude(practice_id=None)
            .order_by()
            .values_list("practice_id", flat=True)
            .distinct()[:2]
        )
        practice_id = practices.pop() if len(practices) == 1 else None
        summary = (
            f"Support agent {user.display_name} failed {count} Support PIN validations "
            f"across accounts within an hour (alert at {threshold})"
        )
    else:
        practice_id = user.practice_id
        summary = (
            f"Support PIN of user {user.display_name} viewed {count} times within 24 hours "
            f"(alert at {threshold})"
        )
    return Finding(
        **finding,
        practice_id=practice_id,
        subject=user,
        subject_label=user.display_name,
        report_username=user.username,
        summary=summary,
    )


def count_findings(now: datetime) -> Iterator[Finding]:
    for rule in COUNT_RULES:
        for subject_id in count_candidates(rule, now):
            finding = count_finding(rule, subject_id, now)
            if finding is not None:
                yield finding


# One alert per thing


def _not_raised(rule: Rule, prefix: str) -> Exists:
    """True for rows with no alert of `rule` yet for the subject `prefix:<their id>`."""
    key = Concat(Value(f"{prefix}:"), Cast("pk", CharField()))
    return ~Exists(Alert.objects.filter(rule=rule, subject_key=key))


def break_glass_findings(now: datetime) -> Iterator[Finding]:
    """Grants opened longer ago than the setting and still not reviewed."""
    after = conf.break_glass_unreviewed_after()
    grants = (
        BreakGlassGrant.objects.filter(reviewed_at__isnull=True, opened_at__lte=now - after)
        .filter(_not_raised(Rule.BREAK_GLASS_UNREVIEWED, "grant"))
        .select_related("account")
        .order_by("opened_at")[:500]  # the rest on the next run
    )
    hours = int(after.total_seconds() // 3600)
    for grant in grants:
        subject_key = f"grant:{grant.pk}"
        account = grant.account
        event_ids = list(
            AuditEvent.objects.filter(
                account_id=account.pk,
                occurred_at__gte=grant.opened_at,
                kind__in=BREAK_GLASS_CODES,
                data__break_glass=grant.pk,
            )
            .order_by("occurred_at", "id")
            .values_list("id", flat=True)[: conf.EVENT_IDS_KEPT]
        )
        yield Finding(
            rule=Rule.BREAK_GLASS_UNREVIEWED,
            subject_key=subject_key,
            dedupe_key=f"{Rule.BREAK_GLASS_UNREVIEWED}:{subject_key}",
            practice_id=account.practice_id,
            subject=account,
            subject_label=f"Break-glass access #{grant.pk} to {account.display_name}",
            report_username=account.username,
            summary=f"Break-glass access #{grant.pk} to user {account.display_name} not "
            f"reviewed {hours} hours after it was opened",
            observed=int((now - grant.opened_at).total_seconds() // 3600),
            threshold=hours,
            window_start=grant.opened_at,
            window_end=now,
            event_ids=event_ids,
        )


def verification_findings(now: datetime) -> Iterator[Finding]:
    """Verifications that found a problem in the log (not those that could not finish)."""
    failed = (
        AuditVerification.objects.filter(intact=False, finished_at__isnull=False)
        .filter(_not_raised(Rule.VERIFICATION_FAILED, "verification"))
        .order_by("finished_at")[:100]  # the rest on the next run
    )
    for verification in failed:
        subject_key = f"verification:{verification.pk}"
        event_ids = list(
            AuditEvent.objects.filter(
                kind=kinds.AUDIT_VERIFICATION_FAILED.code,
                occurred_at__gte=verification.requested_at,
                data__verification=verification.pk,
            ).values_list("id", flat=True)[:1]
        )
        yield Finding(
            rule=Rule.VERIFICATION_FAILED,
            subject_key=subject_key,
            dedupe_key=f"{Rule.VERIFICATION_FAILED}:{subject_key}",
            practice_id=None,
            subject=None,
            subject_label=f"Verification {verification.pk}",
            report_username="",
            summary=f"Audit log verification {verification.pk} found a problem: "
            f"{verification.problem[:300]}",
            observed=1,
            threshold=1,
            window_start=verification.started_at or verification.requested_at,
            window_end=verification.finished_at,
            event_ids=event_ids,
        )


def stream_lag_findings(now: datetime) -> Iterator[Finding]:
    """The configured audit stream, when its oldest unsent event waited past the limit."""
    config = audit_stream.configured()
    if config is None:
        return
    destination = Destination.objects.filter(name=config.name, kind=Destination.Kind.SYSLOG).first()
    if destination is None:
        return  # the worker has not started streaming yet; nothing to measure
    behind = list(audit_stream.chains_behind(destination)[:1000])
    first_unsent = Q()
    for chain_id, sent, _head in behind:
        first_unsent |= Q(chain_id=chain_id, seq=sent + 1)
    yield from _lag(
        Rule.STREAM_LAG,
        f"destination:{destination.pk}",
        destination.name,
        first_unsent,
        conf.stream_lag_limit(),
        now,
        lambda seconds, limit: (
            f"Audit events to {destination.name} are {seconds} seconds behind (alert at {limit})"
        ),
    )


def checkpoint_lag_findings(now: datetime) -> Iterator[Finding]:
    """The oldest event no signed checkpoint covers, when it waited past the limit.

    Checkpoints are signed every minute (`audit_checkpoint`); events left unsigned
    longer mean the timer stopped or its signer refuses (a chain that contradicts
    the last checkpoint, a key a process lacks): until signed, only the keyed hash
    vouches for them.
    """
    last = AuditCheckpoint.objects.order_by("-number").first()
    signed = checkpoint_leaves(last.number) if last else {}
    first_unsigned = Q()
    for chain_id, seq, start_seq in AuditChain.objects.values_list("pk", "seq", "start_seq"):
        covered = signed[chain_id]["seq"] if chain_id in signed else start_seq - 1
        if seq > covered:
            first_unsigned |= Q(chain_id=chain_id, seq=covered + 1)
    yield from _lag(
        Rule.CHECKPOINT_LAG,
        "checkpoints",
        "Signed checkpoints",
        first_unsigned,
        conf.checkpoint_lag_limit(),
        now,
        lambda seconds, limit: (
            f"Audit events have waited {seconds} seconds for a signed checkpoint (alert at {limit})"
        ),
    )


def _lag(
    rule: Rule,
    subject_key: str,
    label: str,
    first_waiting: Q,
    limit: timedelta,
    now: datetime,
    summary: Callable[[int, int], str],
) -> Iterator[Finding]:
    """One alert per spell in which the oldest of the events `first_waiting` names (each
    chain's first one still waiting) has waited past `limit`.

    A spell lasts while that oldest event was written before the alert last saw the
    wait: it cannot have caught up in between, since each chain's events are sent
    and signed in order; the alert's window is moved on instead.
    """
    if not first_waiting.children:
        return
    oldest = (
        AuditEvent.objects.filter(first_waiting)
        .order_by("occurred_at", "id")
        .values_list("id", "occurred_at")
        .first()
    )
    if oldest is None:
        return
    oldest_id, oldest_at = oldest
    lag = now - oldest_at
    if lag <= limit:
        return
    previous = (
        Alert.objects.filter(rule=rule, subject_key=subject_key).order_by("-window_end").first()
    )
    if previous is not None and oldest_at <= previous.window_end:
        Alert.objects.filter(pk=previous.pk, window_end__lt=now).update(window_end=now)
        return
    seconds, limit_seconds = int(lag.total_seconds()), int(limit.total_seconds())
    yield Finding(
        rule=rule,
        subject_key=subject_key,
        dedupe_key=f"{rule}:{subject_key}:{oldest_id}",
        practice_id=None,
        subject=None,
        subject_label=label,
        report_username="",
        summary=summary(seconds, limit_seconds),
        observed=seconds,
        threshold=limit_seconds,
        window_start=oldest_at,
        window_end=now,
        event_ids=[oldest_id],
    )


# How far back the officers named are looked for: each evaluation (every minute) reads
# only this stretch of the log's account events, by its time index.
OFFICER_NAMED_LOOKBACK = timedelta(days=7)


def officer_named_findings(now: datetime) -> Iterator[Finding]:
    """A practice admin who made someone a compliance officer, by creating the account or by
    changing its role: the platform's auditors are told, since that officer then reviews
    the admin's own alerts and break-glass access (separation of duties)."""
    officer = Role.COMPLIANCE_OFFICER.value
    named = (
        AuditEvent.objects.filter(occurred_at__gte=now - OFFICER_NAMED_LOOKBACK)
        .filter(
            Q(kind=kinds.ACCOUNT_CREATED.code, data__role=officer)
            | Q(kind=kinds.ROLE_CHANGED.code, data__new=officer)
        )
        .filter(actor__practice__isnull=False, account__isnull=False)
        .filter(_not_raised(Rule.OFFICER_NAMED, "event"))
        .select_related("account", "practice")
        .order_by("occurred_at", "id")[:100]  # the rest on the next run
    )
    for event in named:
        subject_key = f"event:{event.pk}"
        practice = event.practice.name if event.practice else "no practice"
        yield Finding(
            rule=Rule.OFFICER_NAMED,
            subject_key=subject_key,
            dedupe_key=f"{Rule.OFFICER_NAMED}:{subject_key}",
            practice_id=None,  # the platform's auditors: the practice's officers include the new one
            subject=event.account,
            subject_label=f"{event.account.display_name} ({practice})",
            report_username=event.account.username,
            summary=f"{event.actor_label} made user {event.account.display_name} a compliance "
            f"officer of {practice}",
            observed=1,
            threshold=1,
            window_start=event.occurred_at,
            window_end=event.occurred_at,
            event_ids=[event.pk],
        )


DETECTORS = (
    count_findings,
    break_glass_findings,
    verification_findings,
    stream_lag_findings,
    checkpoint_lag_findings,
    officer_named_findings,
)
