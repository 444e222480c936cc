"""The outbox as a platform auditor sees it: what waits, since when, and why."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ehr.policies import allowed_only, can_view_outbox
from outbox.selectors import outbox_status


@login_required
@never_cache
@require_GET
@allowed_only(can_view_outbox)
def outbox_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [(status, int(status.lag(now).total_seconds())) for status in outbox_status()]
    return render(request, "outbox/status.html", {"rows": rows})
