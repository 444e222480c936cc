"""Alert screens: the list, one alert with the events behind it, and acknowledging it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import reauth
from alerts import conf, selectors, services
from alerts.forms import AlertAcknowledgeForm, AlertFilterForm
from alerts.models import Alert
from ehr.policies import allowed_only, can_acknowledge_alert, can_view_alerts


@login_required
@never_cache
@require_GET
@allowed_only(can_view_alerts)
def alert_list(request: HttpRequest) -> HttpResponse:
    """Open alerts first, then the newest acknowledged ones, optionally of one rule."""
    form = AlertFilterForm(request.GET)
    rules = conf.rules_in_words()
    if not form.is_valid():
        context = {"form": form, "lists": None, "rules": rules}
        return render(request, "alerts/list.html", context, status=400)
    data = form.cleaned_data
    lists = selectors.alert_list(viewer=request.user, rule=data["rule"], page=data["page"] or 1)
    return render(request, "alerts/list.html", {"form": form, "lists": lists, "rules": rules})


def _alert_or_404(request: HttpRequest, alert_id: int) -> Alert:
    alert = selectors.alert_get(viewer=request.user, alert_id=alert_id)
    if alert is None:  # missing, or another practice's: the same answer
        raise Http404
    return alert


def _detail(request: HttpRequest, alert: Alert, form: AlertAcknowledgeForm, status: int = 200):
    context = {
        "alert": alert,
        "form": form,
        "events": selectors.alert_events(viewer=request.user, alert=alert),
        "report_url": selectors.alert_report_url(alert),
        "may_acknowledge": can_acknowledge_alert(request.user, alert),
    }
    return render(request, "alerts/detail.html", context, status=status)


@login_required
@never_cache
@require_GET
@allowed_only(can_view_alerts)
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    """One alert: what the rule found, the events behind it, and its acknowledgement."""
    return _detail(request, _alert_or_404(request, alert_id), AlertAcknowledgeForm())


@login_required
@require_POST
@allowed_only(can_view_alerts)
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Acknowledge the alert with a note; the note is required, and it is done once."""
    alert = _alert_or_404(request, alert_id)
    if not can_acknowledge_alert(request.user, alert):
        raise PermissionDenied
    form = AlertAcknowledgeForm(request.POST)
    if form.is_valid():
        # An oversight decision: a session taken over must not silence an alert. The
        # note is kept with the action, which runs once the officer has confirmed.
        asked = reauth.confirm_unless_recent(request, label=f"acknowledge alert #{alert.pk}")
        if asked is not None:
            return asked
        try:
            services.alert_acknowledge(
                alert=alert,
                acting_user=request.user,
                note=form.cleaned_data["note"],
                ip=request.client_ip,
            )
        except ValidationError as error:
            form.add_error("note" if error.code == "note" else None, error)
        else:
            messages.success(request, f"Alert #{alert.pk} was acknowledged.")
            return redirect("alert_list")
    alert.refresh_from_db()
    return _detail(request, alert, form, status=400)
