"""Reads of alerts for the pages: the list, one alert, its events, and the dashboard's box."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from alerts import rules
from alerts.models import Alert, Rule
from audit import kinds
from audit.kinds import EventType
from audit.models import AuditEvent
from audit.selectors import audit_event_scope
from ehr.policies import AuditScope, audit_scope

ACKNOWLEDGED_PER_PAGE = 50  # acknowledged alerts on a page of the list


def alert_scope(*, viewer: User) -> QuerySet[Alert]:
    """Return the alerts `viewer` may see: every one for platform auditors, their practice's
    for compliance officers, none for anyone else.

    `alert_open_for` says the same in plain SQL for the dashboard's box; a test holds
    the two to the same answer for every role.
    """
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
    acknowledged: Page  # of Alert, newest first


def alert_list(*, viewer: User, rule: str = "", page: int = 1) -> AlertLists:
    """Return the viewer's open alerts (all, newest first) and page `page` of the
    acknowledged ones, newest first (a number past the last page gives the last)."""
    alerts = alert_scope(viewer=viewer)
    if rule:
        alerts = alerts.filter(rule=rule)
    acknowledged = Paginator(
        alerts.filter(acknowledged_at__isnull=False).order_by("-raised_at", "-id"),
        ACKNOWLEDGED_PER_PAGE,
    )
    return AlertLists(
        open=list(alerts.filter(acknowledged_at__isnull=True).order_by("-raised_at", "-id")),
        acknowledged=acknowledged.page(min(page, acknowledged.num_pages)),
    )


@dataclass(frozen=True)
class OpenAlerts:
    count: int
    alerts: list[Alert]


def alert_open_for(*, viewer: User, practice_id: int | None = None, limit: int = 5) -> OpenAlerts:
    """Return how many alerts wait for the viewer and the newest `limit` of them; for a
    platform auditor who chose one practice (`practice_id`), that practice's and the
    platform's own (a failed verification, an agent across practices, stream lag), which
    belong to no practice and concern every one.

    One query of plain SQL finds the newest `limit` open alerts' ids and how many
    wait in all, in the scope `alert_scope` gives (tests/alerts/test_views.py holds
    the two to the same answer for every role); only when some wait does a second
    read them with their practice.
    The usual answer is none, and the ORM's compiling of the alert's twenty columns
    cost more than the database's answer (about a millisecond of a dashboard view).
    For the compliance dashboard: its view puts this in the context as `open_alerts`
    and its template includes `alerts/_open_alerts.html`.
    """
    scope = audit_scope(viewer)
    if scope is not AuditScope.ALL and scope is not AuditScope.PRACTICE:
        return OpenAlerts(count=0, alerts=[])
    where, params = "acknowledged_at IS NULL", []
    if scope is AuditScope.PRACTICE:
        where, params = where + " AND practice_id = %s", [viewer.practice_id]
    elif practice_id is not None:
        where, params = where + " AND (practice_id = %s OR practice_id IS NULL)", [practice_id]
    table = connection.ops.quote_name(Alert._meta.db_table)
    with connection.cursor() as cursor:
        # The window counts every open alert in scope; LIMIT applies after it.
        cursor.execute(
            f"SELECT id, count(*) OVER () FROM {table} WHERE {where}"  # noqa: S608  # nosec B608  (the model's table; values bound)
            " ORDER BY raised_at DESC, id DESC LIMIT %s",
            [*params, limit],
        )
        found = cursor.fetchall()
    if not found:
        return OpenAlerts(count=0, alerts=[])
    by_id = Alert.objects.select_related("practice").in_bulk([pk for pk, _count in found])
    newest = [by_id[pk] for pk, _count in found if pk in by_id]
    return OpenAlerts(count=found[0][1], alerts=newest)


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


# The report's filters for each rule's events (audit/forms.py): the one kind a rule counts,
# where it counts one, so that the link lists what was counted and not its neighbours of
# the same type; the user filter and the dates are added from the alert itself.
REPORT_FILTERS: dict[str, dict[str, str]] = {
    Rule.AGENT_FAILED_VALIDATIONS: {"kind": rules.AGENT_FAILURES.kind},
    Rule.SUPPORT_PIN_VIEWS: {"kind": rules.PIN_VIEWS.kind},
    Rule.SIGN_IN_LOCKOUTS: {"kind": rules.LOCKOUTS.kind},
    Rule.BREAK_GLASS_UNREVIEWED: {"break_glass": "on"},
    Rule.VERIFICATION_FAILED: {"kind": kinds.AUDIT_VERIFICATION_FAILED.code},
    Rule.STREAM_LAG: {},
    Rule.CHECKPOINT_LAG: {},
    Rule.OFFICER_NAMED: {"type": EventType.ACCOUNT.value},
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
