"""The Audit Log Report and its exports: CSV, FHIR AuditEvents, evidence for outside auditors."""

from collections.abc import Callable, Sequence

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.reauth import recent_auth_required
from accounts.selectors import practice_search
from audit import fhir as fhir_format
from audit import integrity, selectors
from audit.checkpoints import CheckpointRefused
from audit.evidence import audit_evidence_export
from audit.formatting import event_date, event_time, ip_text
from audit.forms import KIND_NAMES, AuditEventFilter, SuggestionQuery
from audit.services import audit_log_export, user_label
from audit.tables import report_rows
from ehr.db import read_replica, replica_fallback
from ehr.navigation import from_this_site
from ehr.policies import (
    AuditScope,
    allowed_only,
    audit_scope,
    can_choose_audit_practice,
    can_export_audit_evidence,
    can_read_audit_log,
    can_review_audit_subjects,
    can_verify_audit_log,
)
from ehr.prepared import bound_parameters

PAGE_SIZE = 50


def _filterset(request: HttpRequest, *, using: str = DEFAULT_DB_ALIAS) -> AuditEventFilter:
    """The report's filters over the events `request.user` may read, from database `using`.

    Only the events are read from `using` (the replica, for the report): the
    accounts and patients the filters name, which decide what the page may show,
    are looked up on the primary.
    """
    scope = audit_scope(request.user)
    if scope is None:
        raise PermissionDenied
    tz = request.user.zone
    return AuditEventFilter(
        request.GET,
        queryset=selectors.audit_event_scope(viewer=request.user).using(using),
        find_patients=lambda text: selectors.audit_patient_lookup(viewer=request.user, text=text),
        find_accounts=lambda text: selectors.audit_account_matches(viewer=request.user, text=text),
        time_zone=tz,
        today=timezone.now().astimezone(tz).date(),
        chooses_practice=can_choose_audit_practice(request.user),
        sees_oversight=scope is not AuditScope.OWN_ACCOUNT,
        patient_practices=(
            (lambda patient_id: selectors.audit_patient_practices(patient_id=patient_id))
            if scope is AuditScope.ALL
            else None
        ),
    )


def _page_number(raw: str | None) -> int | None:
    """The page number a link carries: 1, 2 ... from the newest, -1, -2 ... from the oldest."""
    if not raw or len(raw) > 8:
        return None
    try:
        number = int(raw)
    except ValueError:
        return None
    return number or None


def _position(number: int | None, rows: int) -> tuple[int, int] | None:
    """Return (first, last) of the events a keyset page shows, counted from the newest.

    Only pages numbered from the newest say it. Pages are numbered from the oldest
    when the count is not exact (more than its bound), where their place is unknown.
    """
    if number is None or number < 0 or not rows:
        return None
    first = (number - 1) * PAGE_SIZE + 1
    return first, first + rows - 1


@login_required
@never_cache
@require_GET
@replica_fallback
def audit_report(request: HttpRequest) -> HttpResponse:
    """The Audit Log Report: its rows come from the read replica when there is one."""
    filterset = _filterset(request, using=read_replica())
    tz = filterset.form.time_zone
    if not filterset.is_valid():
        return _refused_filters(request, filterset)
    raw_sort = request.GET.get("sort", "")[:20]
    sort = selectors.Sort.parse(raw_sort) or selectors.DEFAULT_SORT
    sort_unknown = bool(raw_sort) and selectors.Sort.parse(raw_sort) is None
    # The count and the newest-first pages with bind parameters: prepared, they skip
    # planning every monthly partition (ehr/prepared.py). Sorted pages are planned each
    # time: a generic plan of their outer query read far more at 5,000,000 events.
    with bound_parameters(filterset.qs.db):
        count = selectors.audit_event_count(filterset.count_parts, between=filterset.form.range)
    number = _page_number(request.GET.get("n"))
    if sort.is_default:
        direction = request.GET.get("page", "first")
        if direction not in {"first", "last", "older", "newer"}:
            direction = "first"
        cursor = selectors.Cursor.decode(request.GET.get("cursor"))
        if direction in {"older", "newer"} and cursor is None:
            direction = "first"
        number = {"first": 1, "last": -1}.get(direction, number)
        size = PAGE_SIZE
        if direction == "last" and count.exact and count.value:
            # The oldest page holds what the full pages from the newest leave over, so
            # that both ends show the same pages, numbered from the newest.
            size = count.value % PAGE_SIZE or PAGE_SIZE
            number = -(-count.value // PAGE_SIZE)
        with bound_parameters(filterset.qs.db):
            page = selectors.audit_report_page(
                filterset.parts,
                between=filterset.form.range,
                direction=direction,
                cursor=cursor,
                size=size,
            )
        found = page.rows
        position = _position(number, len(found))
    else:
        page = selectors.audit_sorted_page(
            filterset.parts,
            between=filterset.form.range,
            sort=sort,
            number=number or 1,
            size=PAGE_SIZE,
            sorted_count=min(count.value, selectors.SORT_LIMIT),
        )
        found = page.rows
        first = (page.number - 1) * PAGE_SIZE + 1
        position = (first, first + len(found) - 1) if found else None
    can_review = can_review_audit_subjects(request.user)
    links = _SubjectLinks(found) if can_review else _NO_LINKS
    rows = [
        {
            "date": event_date(row["occurred_at"], tz),
            "time": event_time(row["occurred_at"], tz),
            "patient": row["patient_name"],
            "patient_url": links.patient(row),
            "user": row["actor_label"],
            "user_url": links.account(row),
            "type": row["type"],
            "action": row["action"],
            "details": row["details"],
            "ip": ip_text(row["ip"]),
        }
        for row in found
    ]
    data = filterset.form.cleaned_data
    # Links and the form show the range actually used (a quick range or the default
    # resolved to dates), so paging and exporting keep exactly these rows.
    query = request.GET.copy()
    for name in ("page", "cursor", "n", "sort", "last", "date_from", "date_to"):
        query.pop(name, None)
    if data.get("kind"):
        query["kind"] = data["kind"]  # the links carry the kind's code, whatever was typed
    kept = query.copy()  # a quick range keeps the filters and the order
    if not sort.is_default:
        kept["sort"] = sort.encode()
    quick = [
        (label, f"?{kept.urlencode()}&last={key}" if kept else f"?last={key}")
        for key, label in filterset.filters["last"].extra["choices"]
    ]
    query["date_from"] = data["date_from"].isoformat()
    query["date_to"] = data["date_to"].isoformat()
    shown = query.copy()
    if data.get("kind"):
        shown["kind"] = KIND_NAMES.get(data["kind"], data["kind"])  # the box shows its name
    filterset.form.data = shown
    unsorted = query.urlencode()
    if not sort.is_default:
        query["sort"] = sort.encode()
    context = {
        "filter": filterset,
        "page": page,
        "keyset": sort.is_default,
        "number": number,
        "rows": rows,
        "rows_html": report_rows(rows),
        "query": query.urlencode(),
        "headers": _sort_headers(unsorted, sort),
        "sort": sort,
        "sort_label": SORT_LABELS[sort.key],
        "sort_unknown": sort_unknown,
        "count": count,
        "indication": _indication(count, position, page, keyset=sort.is_default, number=number),
        "sort_limit_text": f"{selectors.SORT_LIMIT:,}",
        "sorted_all": count.exact and count.value <= selectors.SORT_LIMIT,
        "quick_links": quick,
        "time_zone": tz.key,
        "can_export_evidence": can_export_audit_evidence(request.user),
        "show_practice": can_choose_audit_practice(request.user),
        "user_typed": bool(data.get("username", "").strip()),
        "user_matches": [user_label(account) for account in filterset.form.matched_accounts],
        "patient_history_url": _patient_history_url(request.user, filterset)
        if can_review
        else None,
    }
    return render(request, "audit/report.html", context)


def _indication(count, position, page, *, keyset: bool, number: int | None) -> str:
    """Say how many events match and which of them the page shows.

    `1,234 events · Page 3 · events 101-150` (an en dash); `More than 10,000 events · Page 2 from
    the oldest`. A keyset page reached by a link without a page number (an old
    bookmark) says only the count.
    """
    parts = [
        f"{count.value:,} event{'s' if count.value != 1 else ''}"
        if count.exact
        else f"More than {count.value:,} events"
    ]
    if not keyset:
        parts.append(f"Page {page.number:,} of {page.pages:,}")
    elif number is not None and number > 0:
        parts.append(f"Page {number:,}")
    elif number is not None and page.rows:
        parts.append(f"Page {-number:,} from the oldest")
    if position is not None:
        parts.append(f"events {position[0]:,}\u2013{position[1]:,}")
    return " · ".join(parts)


# The report's columns: heading, sort key.
COLUMNS = (
    ("Date", "time"),
    ("Time", "time"),
    ("Patient", "patient"),
    ("User", "user"),
    ("Type", "type"),
    ("Action", "action"),
    ("Details", "details"),
    ("IP", "ip"),
)
SORT_LABELS = {
    "time": "Date/Time",
    "patient": "Patient",
    "user": "User",
    "type": "Type",
    "action": "Action",
    "details": "Details",
    "ip": "IP",
}


def _sort_headers(query: str, sort: selectors.Sort) -> list[dict]:
    """Return each column heading with the link that sorts by it.

    The sorted column's link turns its order round; another column's sorts it
    A to Z (time: newest first). `aria-sort` goes on one heading only: Date for
    the time, which Date and Time share.
    """
    headers = []
    for label, key in COLUMNS:
        current = key == sort.key
        if current:
            target = selectors.Sort(key, descending=not sort.descending)
        else:
            target = selectors.Sort(key, descending=key == "time")
        link = f"?{query}&sort={target.encode()}" if not target.is_default else f"?{query}"
        shown = current and label != "Time"  # Date and Time share one order: said once
        headers.append(
            {
                "label": label,
                "url": link,
                "sorted": shown,
                "aria_sort": ("descending" if sort.descending else "ascending") if shown else None,
                "arrow": ("▼" if sort.descending else "▲") if shown else "",
            }
        )
    return headers


def _patient_key(row: dict) -> tuple[int, str] | None:
    if not row["patient_id"] or row["practice_id"] is None or "/" in row["patient_id"]:
        return None  # an id with a slash has no page address; the report's filter still takes it
    return row["practice_id"], row["patient_id"]


class _SubjectLinks:
    """The history page of each account and patient a page of rows names.

    Each is written once however many rows name it: a page of one user's or one
    patient's events names the same one fifty times.
    """

    def __init__(self, rows: Sequence[dict]):
        accounts = {row["actor_id"] for row in rows} - {None}
        patients = {_patient_key(row) for row in rows} - {None}
        self.accounts = {a: reverse("audit_subject_account", args=[a]) for a in accounts}
        self.patients = {p: reverse("audit_subject_patient", args=p) for p in patients}

    def account(self, row: dict) -> str | None:
        return self.accounts.get(row["actor_id"])

    def patient(self, row: dict) -> str | None:
        return self.patients.get(_patient_key(row))


_NO_LINKS = _SubjectLinks(())  # for a viewer who may not open the history pages


def _patient_history_url(viewer, filterset: AuditEventFilter) -> str | None:
    """The patient the report is filtered by, as its history page (a practice's patient).

    For a platform auditor, the practice holding the id within the Practice filter;
    where several do, the one of the patient's newest event among them. A patient
    of no practice has no history page.
    """
    patient = filterset.form.cleaned_data.get("patient")
    if not patient or "/" in patient:
        return None
    practice_id = viewer.practice_id
    if filterset.patient_practices is not None:  # a viewer of every practice's log
        holders = [pk for pk in filterset.patient_holders if pk is not None]
        if len(holders) <= 1:
            practice_id = holders[0] if holders else None
        else:
            practice_id = (
                selectors.audit_event_scope(viewer=viewer)
                .filter(practice_id__in=holders, patient_id=patient)
                .order_by("-occurred_at", "-id")
                .values_list("practice_id", flat=True)
                .first()
            )
    if practice_id is None:
        return None
    return reverse("audit_subject_patient", args=[practice_id, patient])


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
    return _suggestions(
        request, lambda text: selectors.audit_patient_search(viewer=request.user, text=text)
    )


@login_required
@never_cache
@require_GET
@allowed_only(can_choose_audit_practice)
def audit_practices(request: HttpRequest) -> JsonResponse:
    """The practices matching `q` (name or Group ID), for a platform auditor's practice box
    on the report and the dashboard (at most 20)."""
    return _suggestions(
        request,
        lambda text: [(p.group_id, p.name) for p in practice_search(text=text)],
    )


def _suggestions(request: HttpRequest, find: Callable[[str], list[tuple]]) -> JsonResponse:
    """Answer a suggesting box's `?q=` with what `find(text)` returns, as (id, name) pairs;
    text a box cannot send (a NUL, over 200 characters) is refused and looked up nowhere."""
    query = SuggestionQuery(request.GET)
    if not query.is_valid():
        return JsonResponse({"results": [], "errors": query.errors}, status=400)
    found = find(query.cleaned_data["q"])
    return JsonResponse({"results": [{"id": id_, "name": name} for id_, name in found]})


@login_required
@never_cache
@require_GET
@from_this_site("export the audit log to a CSV file")
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
@from_this_site("export the audit log as FHIR AuditEvents")
@allowed_only(can_read_audit_log)
@recent_auth_required(label="export the audit log as FHIR AuditEvents", download=True)
def audit_export_fhir(request: HttpRequest) -> HttpResponse:
    """The same rows as the CSV export, as a FHIR R4 Bundle of AuditEvent resources."""
    return _export(request, fhir=True)


def _refused_filters(request: HttpRequest, filterset: AuditEventFilter) -> HttpResponse:
    """The report with its filters as typed and each one's message, and no rows."""
    context = {
        "filter": filterset,
        "page": None,
        "rows": [],
        "show_practice": can_choose_audit_practice(request.user),
    }
    return render(request, "audit/report.html", context, status=400)


def _unsigned(request: HttpRequest, refused: CheckpointRefused) -> HttpResponse:
    """No file when the log contradicts its last signed checkpoint: say so on the report.

    An export is frozen at a checkpoint taken for it; the log failed the check made
    before signing one, so nothing was exported, and the finding is kept for the
    Integrity page and its alert (`audit_checkpoint_refusal_record`).
    """
    integrity.audit_checkpoint_refusal_record(refused)
    messages.error(
        request,
        "Nothing was exported: the audit log no longer matches what its last signed "
        "checkpoint covers, so no new checkpoint can vouch for it. The finding is on the "
        "Integrity page, and the platform's auditors are alerted.",
    )
    query = request.GET.urlencode()
    return redirect(f"{reverse('audit_report')}?{query}" if query else reverse("audit_report"))


def _export(request: HttpRequest, *, fhir: bool) -> HttpResponse:
    filterset = _filterset(request)
    if not filterset.is_valid():
        return _refused_filters(request, filterset)
    data = filterset.form.cleaned_data
    try:
        export = audit_log_export(
            acting_user=request.user,
            ip=request.client_ip,
            events=filterset.qs,
            filters=filterset.describe(),
            filter_data=filterset.describe_data(),
            time_zone=filterset.form.time_zone,
            fhir=fhir,
        )
    except CheckpointRefused as refused:
        return _unsigned(request, refused)
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
@from_this_site("download a verifiable copy of the audit log")
@allowed_only(can_export_audit_evidence)
@recent_auth_required(label="download a verifiable copy of the audit log", download=True)
def audit_evidence(request: HttpRequest) -> HttpResponse:
    """Download whole chains with the signed checkpoint that covers them, for outside auditors.

    Recorded before any line leaves, as the CSV export is (`audit_evidence_export`).
    """
    try:
        evidence = audit_evidence_export(acting_user=request.user, ip=request.client_ip)
    except CheckpointRefused as refused:
        return _unsigned(request, refused)
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
