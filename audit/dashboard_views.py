"""The compliance dashboard: a period's activity as charts, each with its table and links."""

from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Practice, User
from alerts.selectors import alert_open_for
from audit import charts, dashboard, kinds
from audit.charts import Series
from audit.forms import PRACTICE_BOX, PracticeField
from audit.integrity import audit_integrity_summary
from ehr.db import read_replica, replica_fallback
from ehr.policies import allowed_only, can_choose_audit_practice, can_view_audit_dashboard

# What each chart shows: (kind, its label), stacked in this order.
PIN_ACTIVITY = [
    (kinds.SUPPORT_PIN_VIEWED, "Viewed"),
    (kinds.SUPPORT_PIN_VALIDATED, "Validated"),
    (kinds.SUPPORT_PIN_VALIDATION_FAILED, "Failed validation"),
    (kinds.SUPPORT_PIN_GENERATED, "Generated"),
    (kinds.SUPPORT_PIN_VALIDATION_LOCKED, "Validation locked"),
]
SIGN_IN_TROUBLE = [
    (kinds.SIGN_IN_FAILED, "Failed sign-in"),
    (kinds.SIGN_IN_FAILED_UNKNOWN, "Failed, unknown username"),
    (kinds.SIGN_IN_LOCKED, "Locked"),
    (kinds.SIGN_IN_LOCKED_UNKNOWN, "Locked, unknown username"),
]
BREAK_GLASS = [
    (kinds.BREAK_GLASS_OPENED, "Opened"),
    (kinds.BREAK_GLASS_REVIEWED, "Reviewed"),
]


_OFFERED = ", ".join(map(str, dashboard.PERIODS[:-1])) + f" or {dashboard.PERIODS[-1]}"


class DashboardForm(forms.Form):
    """The period, and for a platform auditor the practice (all of them by default)."""

    days = forms.TypedChoiceField(
        label="Period",
        choices=[(n, f"Last {n} days") for n in dashboard.PERIODS],
        coerce=int,
        required=False,
        empty_value=dashboard.DEFAULT_PERIOD,
        error_messages={
            "invalid_choice": f"Choose one of the periods above: the last {_OFFERED} days."
        },
    )
    practice = PracticeField(**PRACTICE_BOX)

    def __init__(self, data, *, viewer: User):
        super().__init__(data)
        self.viewer = viewer
        self.chooses_practice = can_choose_audit_practice(viewer)
        if not self.chooses_practice:
            # An officer's dashboard is their practice's; a practice in the address is
            # refused below unless it is theirs, never looked up.
            del self.fields["practice"]

    def clean(self):
        data = super().clean()
        if not self.chooses_practice:
            asked = (self.data.get("practice") or "").strip()
            if asked and asked != str(self.viewer.practice.group_id):
                raise forms.ValidationError("You can see the dashboard of your own practice only.")
            data["practice"] = None
        return data


@login_required
@never_cache
@require_GET
@allowed_only(can_view_audit_dashboard)
@replica_fallback
def audit_dashboard(request: HttpRequest) -> HttpResponse:
    form = DashboardForm(request.GET or None, viewer=request.user)
    if request.GET and not form.is_valid():
        # What was valid stays chosen: the period links keep a good practice, and the
        # practice box the period asked for.
        kept = form.cleaned_data
        days = kept.get("days")
        context = {
            "form": form,
            "periods": _periods(days, kept.get("practice")),
            "days": days or dashboard.DEFAULT_PERIOD,
        }
        return render(request, "audit/dashboard.html", context, status=400)
    data = form.cleaned_data if request.GET else {}
    days = data.get("days") or dashboard.DEFAULT_PERIOD
    practice = data.get("practice")
    chosen = practice.pk if practice is not None else None
    tz = request.user.zone
    now = timezone.now()
    period = dashboard.dashboard_period(today=now.astimezone(tz).date(), days=days, time_zone=tz)
    counted = dashboard.audit_dashboard_counts(
        viewer=request.user, practice_id=chosen, period=period, using=read_replica(), now=now
    )
    counts = counted.by_kind
    settled = counted.settled
    links = _Links(period, practice)
    by_type = dashboard.per_day_by_type(counts, period)
    type_series = [
        Series(value, label, by_type[value], links.day(type=value))
        for value, label in kinds.EventType.choices
    ]
    agents = dashboard.top_agents(counted.failures_by_agent)
    agent_rows = [
        (
            agent.label,
            agent.failures,
            links.period(kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code, username=agent.username)
            if agent.username
            else links.period(kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code),
        )
        for agent in agents
    ]
    context = {
        "form": form,
        "periods": _periods(days, practice),
        "days": days,
        "practice": practice,
        "time_zone": tz.key,
        "first_day": period.days[0],
        "last_day": period.days[-1],
        "charts": [
            _chart("types", "Events by type", period, type_series, settled=settled),
            _chart(
                "pins",
                "Support PIN activity",
                period,
                _kind_series(PIN_ACTIVITY, counts, period, links),
                settled=settled,
            ),
            _chart(
                "sign-in",
                "Sign-in failures and lockouts",
                period,
                _kind_series(SIGN_IN_TROUBLE, counts, period, links),
                settled=settled,
            ),
            _chart(
                "break-glass",
                "Break-glass access",
                period,
                _kind_series(BREAK_GLASS, counts, period, links),
                settled=settled,
            ),
        ],
        "break_glass": dashboard.break_glass_status(
            viewer=request.user, practice_id=chosen, now=now
        ),
        "agents": agent_rows,
        "agents_svg": charts.horizontal_bars(agent_rows) if agent_rows else "",
        "agents_link": links.period(kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code),
        "open_alerts": alert_open_for(viewer=request.user, practice_id=chosen),
        # Who sees the dashboard sees the Integrity page: the same two roles.
        "integrity": audit_integrity_summary(),
    }
    return render(request, "audit/dashboard.html", context)


def _periods(shown: int | None, practice: Practice | None) -> list[dict]:
    """Return the periods offered, each a link that keeps the practice chosen."""
    address = reverse("audit_dashboard")
    chosen = {"practice": practice.group_id} if practice is not None else {}
    return [
        {
            "label": label,
            "url": f"{address}?{urlencode({'days': days, **chosen})}",
            "current": days == shown,
        }
        for days, label in DashboardForm.base_fields["days"].choices
    ]


class _Links:
    """Addresses of the Audit Log Report filtered to one bar: its day (or the period), its
    type or kind, its user, and the practice chosen; escaped for an attribute."""

    def __init__(self, period: dashboard.Period, practice: Practice | None):
        self.report = reverse("audit_report")
        self.practice = {"practice": practice.group_id} if practice is not None else {}
        self.days = tuple(day.isoformat() for day in period.days)

    def day(self, **filters) -> "_DayLinks":
        """Return the link of each day of the period (one encoding, then the dates)."""
        return _DayLinks(
            escape(f"{self.report}?{urlencode({**filters, **self.practice})}&"), self.days
        )

    def period(self, **filters) -> str:
        query = {**filters, **self.practice, "date_from": self.days[0], "date_to": self.days[-1]}
        return f"{self.report}?{urlencode(query)}"


class _DayLinks(Sequence):
    """The links of a series' days, each written when a bar or a cell asks for it: most
    days of most series have no events, and so no link."""

    __slots__ = ("_days", "_prefix")

    def __init__(self, prefix: str, days: tuple[str, ...]):
        self._prefix, self._days = prefix, days

    # Equal, and hashed, by what they write: a chart keeps its settled days' drawing by
    # its links among the rest (audit/charts.py).
    def __eq__(self, other) -> bool:
        if not isinstance(other, _DayLinks):
            return NotImplemented
        return self._prefix == other._prefix and self._days == other._days

    def __hash__(self) -> int:
        return hash((self._prefix, self._days))

    def __getitem__(self, n: int) -> str:
        day = self._days[n]
        return f"{self._prefix}date_from={day}&amp;date_to={day}"

    def __len__(self) -> int:
        return len(self._days)


def _kind_series(spec, counts, period, links: _Links) -> list[Series]:
    values = dashboard.per_day(counts, period, [kind.code for kind, _label in spec])
    return [
        Series(kind.code, label, values[kind.code], links.day(kind=kind.code))
        for kind, label in spec
    ]


def _chart(
    key: str, title: str, period: dashboard.Period, series: list[Series], *, settled: int
) -> dict:
    """Return what the template shows of one chart: its SVG, legend and table."""
    days = period.days
    return {
        "key": key,
        "title": title,
        "legend": charts.legend(series),
        "svg": charts.stacked_bars(days=days, series=series, settled=settled),
        "table": charts.day_table(
            days=days, series=series, caption=f"{title} per day", settled=settled
        ),
        "total": sum(sum(s.values) for s in series),
    }
