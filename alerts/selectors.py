"""Reads of alerts for the pages: the list, one alert, its events, and the dashboard's box."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from alerts.models import Alert, Rule
from audit.kinds import EventType
from audit.models import AuditEvent
from audit.selectors import audit_event_scope
from ehr.policies import AuditScope, audit_scope

ACKNOWLEDGED_SHOWN = 100  # newest acknowledged alerts on the list page


def alert_scope(*, viewer: User) -> QuerySet[Alert]:
    """Return the alerts `viewer` may see: every one for platform auditors, their practice's
    for compliance officers, none for anyone else."""
    scope = audit_scope(viewer)
    alerts = Alert.objects.select_related("practice", "acknowledged_by")
    if scope is AuditScope.ALL:
        return alerts
    if scope is AuditScope.PRACTICE:
        return alerts.filter(practice_id=viewer.practice_id)
    return alerts.none()


@dataclass(frozen=True)
class AlertLists:
    open: list[Alert]
    acknowledged: list[Alert]


def alert_list(*, viewer: User, rule: str = "") -> AlertLists:
    """Return the viewer's open alerts (all, newest first) and the newest acknowledged ones."""
    alerts = alert_scope(viewer=viewer)
    if rule:
        alerts = alerts.filter(rule=rule)
    return AlertLists(
        open=list(alerts.filter(acknowledged_at__isnull=True).order_by("-raised_at", "-id")),
        acknowledged=list(
            alerts.filter(acknowledged_at__isnull=False).order_by("-raised_at", "-id")[
                :ACKNOWLEDGED_SHOWN
            ]
        ),
    )


@dataclass(frozen=True)
class OpenAlerts:
    count: int
    alerts: list[Alert]


def alert_open_for(*, viewer: User, limit: int = 5) -> OpenAlerts:
    """Return how many alerts wait for the viewer and the newest `limit` of them.

    One query when fewer than `limit` wait (then they are all of them: the usual
    case, none), two otherwise (the count). For the compliance dashboard: its view
    puts this in the context as `open_alerts` and its template includes
    `alerts/_open_alerts.html`.
    """
    waiting = alert_scope(viewer=viewer).filter(acknowledged_at__isnull=True)
    # An open alert has no one who acknowledged it to join: the practice only, which
    # halves the columns the ORM compiles into the query (about a millisecond).
    newest = list(
        waiting.select_related(None)
        .select_related("practice")
        .order_by("-raised_at", "-id")[:limit]
    )
    count = len(newest) if len(newest) < limit else waiting.count()
    return OpenAlerts(count=count, alerts=newest)


def alert_get(*, viewer: User, alert_id: int) -> Alert | None:
    """Return the alert if the viewer may see it; None whether it is missing or someone else's."""
    return alert_scope(viewer=viewer).select_related("subject").filter(pk=alert_id).first()


def alert_events(*, viewer: User, alert: Alert) -> list[AuditEvent]:
    """Return the events behind the alert that the viewer may read, oldest first."""
    return list(
        audit_event_scope(viewer=viewer)
        .filter(pk__in=alert.event_ids)
        .order_by("occurred_at", "id")
    )


# The report's filters that best match each rule's events (audit/forms.py); the user
# filter and the dates are added from the alert itself.
REPORT_FILTERS: dict[str, dict[str, str]] = {
    Rule.AGENT_FAILED_VALIDATIONS: {},
    Rule.SUPPORT_PIN_VIEWS: {"type": EventType.ACCOUNT.value},
    Rule.SIGN_IN_LOCKOUTS: {"type": EventType.SECURITY.value},
    Rule.BREAK_GLASS_UNREVIEWED: {"break_glass": "on"},
    Rule.VERIFICATION_FAILED: {"type": EventType.SECURITY.value},
    Rule.STREAM_LAG: {},
}


def alert_report_url(alert: Alert, *, now: datetime | None = None) -> str:
    """Return the Audit Log Report filtered to the alert's subject and window.

    The report's dates are whole days in the viewer's time zone (the one active
    for the request), so the link covers the window and may show a little more.
    """
    end = min(alert.window_end, now or timezone.now())
    query = {
        **REPORT_FILTERS[alert.rule],
        "date_from": f"{timezone.localtime(alert.window_start):%Y-%m-%d}",
        "date_to": f"{timezone.localtime(max(end, alert.window_start)):%Y-%m-%d}",
    }
    if alert.report_username:
        query["username"] = alert.report_username
    return f"{reverse('audit_report')}?{urlencode(sorted(query.items()))}"
