"""The Audit Log Report and its exports: CSV, FHIR AuditEvents, evidence for outside auditors."""

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.reauth import recent_auth_required
from audit import fhir as fhir_format
from audit import integrity, selectors
from audit.evidence import audit_evidence_export
from audit.formatting import event_date, event_time, ip_text
from audit.forms import AuditEventFilter
from audit.services import audit_log_export, user_label
from ehr.db import read_replica
from ehr.policies import (
    AuditScope,
    allowed_only,
    audit_scope,
    can_export_audit_evidence,
    can_read_audit_log,
    can_verify_audit_log,
)

PAGE_SIZE = 50


def _filterset(request: HttpRequest, *, using: str = DEFAULT_DB_ALIAS) -> AuditEventFilter:
    """The report's filters over the events `request.user` may read, from database `using`.

    Only the events are read from `using` (the replica, for the report): the
    accounts and patients the filters name, which decide what the page may show,
    are looked up on the primary.
    """
    if audit_scope(request.user) is None:
        raise PermissionDenied
    tz = ZoneInfo(request.user.time_zone)
    return AuditEventFilter(
        request.GET,
        queryset=selectors.audit_event_scope(viewer=request.user).using(using),
        find_patients=lambda text: selectors.audit_patient_lookup(viewer=request.user, text=text),
        find_accounts=lambda text: selectors.audit_account_matches(viewer=request.user, text=text),
        time_zone=tz,
        today=timezone.now().astimezone(tz).date(),
    )


@login_required
@never_cache
@require_GET
def audit_report(request: HttpRequest) -> HttpResponse:
    """The Audit Log Report: its rows come from the read replica when there is one."""
    filterset = _filterset(request, using=read_replica())
    tz = filterset.form.time_zone
    if not filterset.is_valid():
        context = {"filter": filterset, "page": None, "rows": []}
        return render(request, "audit/report.html", context, status=400)
    direction = request.GET.get("page", "first")
    if direction not in {"first", "last", "older", "newer"}:
        direction = "first"
    cursor = selectors.Cursor.decode(request.GET.get("cursor"))
    page = selectors.audit_report_page(
        filterset.parts,
        between=filterset.form.range,
        direction=direction,
        cursor=cursor,
        size=PAGE_SIZE,
    )
    rows = [
        {
            "date": event_date(row["occurred_at"], tz),
            "time": event_time(row["occurred_at"], tz),
            "patient": row["patient_name"],
            "user": row["actor_label"],
            "type": row["type"],
            "action": row["action"],
            "details": row["details"],
            "ip": ip_text(row["ip"]),
        }
        for row in page.rows
    ]
    data = filterset.form.cleaned_data
    # Links and the form show the range actually used (a quick range or the default
    # resolved to dates), so paging and exporting keep exactly these rows.
    query = request.GET.copy()
    for name in ("page", "cursor", "last", "date_from", "date_to"):
        query.pop(name, None)
    quick = [
        (label, f"?{query.urlencode()}&last={key}" if query else f"?last={key}")
        for key, label in filterset.filters["last"].extra["choices"]
    ]
    query["date_from"] = data["date_from"].isoformat()
    query["date_to"] = data["date_to"].isoformat()
    filterset.form.data = query
    context = {
        "filter": filterset,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "quick_links": quick,
        "time_zone": tz.key,
        "can_export_evidence": can_export_audit_evidence(request.user),
        "user_typed": bool(data.get("username", "").strip()),
        "user_matches": [user_label(account) for account in filterset.form.matched_accounts],
    }
    return render(request, "audit/report.html", context)


@login_required
@never_cache
@require_GET
@allowed_only(can_read_audit_log)
def audit_patients(request: HttpRequest) -> JsonResponse:
    """The viewer's patients matching `q`, for the report's patient box (at most 20).

    Scoped as the report is: a practice's own patients, a provider's own events'
    patients; nothing for anyone who may read no log.
    """
    if audit_scope(request.user) is None:
        raise PermissionDenied
    text = request.GET.get("q", "")[:200]
    found = selectors.audit_patient_search(viewer=request.user, text=text)
    return JsonResponse({"patients": [{"id": pid, "name": name} for pid, name in found]})


@login_required
@never_cache
@require_GET
@allowed_only(can_read_audit_log)
@recent_auth_required(label="export the audit log to a CSV file", download=True)
def audit_export(request: HttpRequest) -> HttpResponse:
    """Download exactly the filtered rows as CSV, recorded in the log before any row leaves.

    Order: record, then stream. The export's event commits first (fail closed: no
    event, no file). The rows stream after this view has returned and the status
    line has gone out, so an event written after them could neither stop them nor
    survive a stream that fails; instead, if they stop part-way, a second event in
    its own transaction says after how many of them and why (AUDIT_EXPORT_FAILED,
    AUDIT_EXPORT_INTERRUPTED; `audit_log_export`, docs/audit.md).
    """
    return _export(request, fhir=False)


@login_required
@never_cache
@require_GET
@allowed_only(can_read_audit_log)
@recent_auth_required(label="export the audit log as FHIR AuditEvents", download=True)
def audit_export_fhir(request: HttpRequest) -> HttpResponse:
    """The same rows as the CSV export, as a FHIR R4 Bundle of AuditEvent resources."""
    return _export(request, fhir=True)


def _export(request: HttpRequest, *, fhir: bool) -> HttpResponse:
    filterset = _filterset(request)
    if not filterset.is_valid():
        context = {"filter": filterset, "page": None, "rows": []}
        return render(request, "audit/report.html", context, status=400)
    data = filterset.form.cleaned_data
    export = audit_log_export(
        acting_user=request.user,
        ip=request.client_ip,
        events=filterset.qs,
        filters=filterset.describe(),
        filter_data=filterset.describe_data(),
        time_zone=filterset.form.time_zone,
        fhir=fhir,
    )
    name = f"audit-log_{data['date_from']:%Y-%m-%d}_to_{data['date_to']:%Y-%m-%d}"
    if fhir:
        filename = f"{name}.fhir.json"
        response = StreamingHttpResponse(export.content, content_type=fhir_format.CONTENT_TYPE)
    else:
        filename = f"{name}.csv"
        response = StreamingHttpResponse(export.content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Export-Rows"] = str(export.rows)
    return response


@login_required
@never_cache
@require_GET
@allowed_only(can_export_audit_evidence)
@recent_auth_required(label="download a verifiable copy of the audit log", download=True)
def audit_evidence(request: HttpRequest) -> HttpResponse:
    """Download whole chains with the signed checkpoint that covers them, for outside auditors.

    Recorded before any line leaves, as the CSV export is (`audit_evidence_export`).
    """
    evidence = audit_evidence_export(acting_user=request.user, ip=request.client_ip)
    response = StreamingHttpResponse(evidence.content, content_type="application/x-ndjson")
    filename = f"audit-evidence_checkpoint-{evidence.checkpoint}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Export-Rows"] = str(evidence.events)
    return response


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
@allowed_only(can_verify_audit_log)
def audit_integrity(request: HttpRequest) -> HttpResponse:
    """When the whole log was last verified and what was found; "Verify now" asks again.

    The verification runs in the background (the outbox worker), so a large log
    never holds up the page. Platform auditors see where a problem is; compliance
    officers see that there is one (the place may be another practice's chain).
    """
    if request.method == "POST":
        try:
            integrity.audit_verification_request(acting_user=request.user, ip=request.client_ip)
            messages.success(
                request, "Verification asked for. This page shows the result when it ends."
            )
        except integrity.VerificationAlreadyAsked:
            messages.info(
                request, "A verification is already waiting or running; its result will show here."
            )
        return redirect("audit_integrity")
    status = integrity.audit_integrity_status()
    context = {
        "status": status,
        "show_where": audit_scope(request.user) is AuditScope.ALL,
        "time_zone": request.user.time_zone,
    }
    return render(request, "audit/integrity.html", context)
