"""Who touched this account or patient: one subject's history, printable and exportable.

Compliance officers read the history of their own practice's accounts and
patients, platform auditors everyone's (`ehr.policies.can_review_audit_subjects`,
then `audit.selectors.audit_subject_account` / `audit_subject_patient`, which
answer 404 for a subject outside the viewer's reach). Reading a history is
itself an event, and so is each export of it (the report's exports, with the
subject as their filter).
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import User
from accounts.reauth import recent_auth_required
from audit import fhir as fhir_format
from audit import selectors
from audit.formatting import event_date, event_time, ip_text
from audit.forms import SUBJECT_PERIODS, SubjectHistoryForm, any_of
from audit.models import AuditedPatient
from audit.services import (
    ExportSubject,
    audit_history_view_record,
    audit_log_export,
    user_label,
)
from ehr.navigation import from_this_site
from ehr.policies import allowed_only, can_review_audit_subjects


@dataclass(frozen=True)
class Subject:
    """The account or the patient a history is about."""

    account: User | None
    patient: AuditedPatient | None
    title: str  # "user 496094 (dorothy Ludwig)", "patient Ada Lovelace (P-200)"
    url: str

    @property
    def is_account(self) -> bool:
        return self.account is not None


def _account(request: HttpRequest, account_id: int) -> Subject:
    account = selectors.audit_subject_account(viewer=request.user, account_id=account_id)
    if account is None:
        raise Http404("No such account in your practice.")
    return Subject(
        account=account,
        patient=None,
        title=f"user {user_label(account)}",
        url=reverse("audit_subject_account", args=[account.pk]),
    )


def _patient(request: HttpRequest, practice_id: int, patient_id: str) -> Subject:
    patient = selectors.audit_subject_patient(
        viewer=request.user, practice_id=practice_id, patient_id=patient_id
    )
    if patient is None:
        raise Http404("No such patient in your practice's log.")
    return Subject(
        account=None,
        patient=patient,
        title=f"patient {patient.patient_name} ({patient.patient_id})",
        url=reverse("audit_subject_patient", args=[practice_id, patient_id]),
    )


def _form(request: HttpRequest) -> SubjectHistoryForm:
    tz = request.user.zone
    return SubjectHistoryForm(request.GET, time_zone=tz, today=timezone.now().astimezone(tz).date())


def _sides(subject: Subject, form: SubjectHistoryForm) -> list:
    return selectors.audit_subject_sides(
        account=subject.account,
        patient=subject.patient,
        include_actions=subject.is_account and form.cleaned_data["include_actions"],
    )


def _history(request: HttpRequest, subject: Subject) -> HttpResponse:
    """List the subject's events in the period, newest first, and record that they were read."""
    form = _form(request)
    context = {"subject": subject, "form": form, "rows": None}
    if not form.is_valid():
        return render(request, "audit/subject.html", context, status=400)
    tz = form.time_zone
    scope = selectors.audit_event_scope(viewer=request.user)
    page = selectors.audit_report_page(
        [scope.filter(side) for side in _sides(subject, form)],
        between=form.range,
        direction="first",
        cursor=None,
        size=selectors.SUBJECT_LIMIT,
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
    audit_history_view_record(
        acting_user=request.user,
        ip=request.client_ip,
        account=subject.account,
        patient=subject.patient,
        rows=len(rows),
        period=form.period(),
        include_actions=bool(form.cleaned_data.get("include_actions")),
    )
    query = request.GET.copy()
    query.pop("last", None)
    quick = []
    for key, days in SUBJECT_PERIODS.items():
        quick.append((f"{days} days", f"?{_with(query, last=key)}"))
    data = form.cleaned_data
    query["date_from"] = data["date_from"].isoformat()
    query["date_to"] = data["date_to"].isoformat()
    form.data = query
    now = timezone.now()
    context |= {
        "rows": rows,
        "more": not page.is_last,
        "limit": selectors.SUBJECT_LIMIT,
        "period": form.period(),
        "query": query.urlencode(),
        "quick_links": quick,
        "time_zone": tz.key,
        "printed_by": user_label(request.user),
        "printed_at": f"{event_date(now, tz)} {event_time(now, tz)}",
    }
    return render(request, "audit/subject.html", context)


def _with(query, **values) -> str:
    query = query.copy()
    for name, value in values.items():
        query[name] = value
    query.pop("date_from", None)
    query.pop("date_to", None)
    return query.urlencode()


def _export(request: HttpRequest, subject: Subject, *, fhir: bool) -> HttpResponse:
    """The history's events, all of them in the period, as the report's CSV or FHIR export."""
    form = _form(request)
    if not form.is_valid():
        context = {"subject": subject, "form": form, "rows": None}
        return render(request, "audit/subject.html", context, status=400)
    start, end = form.range
    events = selectors.audit_event_scope(viewer=request.user).filter(
        any_of(_sides(subject, form)), occurred_at__gte=start, occurred_at__lt=end
    )
    if subject.account is not None:
        include = bool(form.cleaned_data["include_actions"])
        what = f"history of account {subject.account.pk}"
        if include:
            what += " with its own actions"
        facts = {"subject_account_id": subject.account.pk, "include_actions": include}
        name = f"audit-history_account-{subject.account.pk}"
    else:
        what = "history of a patient"
        facts = {"patient_id": subject.patient.patient_id}
        name = "audit-history_patient"
    export = audit_log_export(
        acting_user=request.user,
        ip=request.client_ip,
        events=events,
        filters=f"{form.period()}; {what}",
        filter_data=facts,
        time_zone=form.time_zone,
        fhir=fhir,
        about=ExportSubject(account=subject.account, patient=subject.patient),
    )
    data = form.cleaned_data
    name = f"{name}_{data['date_from']:%Y-%m-%d}_to_{data['date_to']:%Y-%m-%d}"
    if fhir:
        response = StreamingHttpResponse(export.content, content_type=fhir_format.CONTENT_TYPE)
        filename = f"{name}.fhir.json"
    else:
        response = StreamingHttpResponse(export.content, content_type="text/csv; charset=utf-8")
        filename = f"{name}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Export-Rows"] = str(export.rows)
    return response


def _subject_view(action: str, *, export: bool = False):
    """The guards of every history view: signed in, never cached, GET only, followed from
    this site (`action` says what a cross-site link asked), for those who review audit
    subjects; an export also asks for the password again when it was not given lately."""

    def guard(view):
        if export:
            view = recent_auth_required(label=action, download=True)(view)
        view = allowed_only(can_review_audit_subjects)(view)
        view = from_this_site(action)(view)
        return login_required(never_cache(require_GET(view)))

    return guard


@_subject_view("read an account's audit history")
def account_history(request: HttpRequest, account_id: int) -> HttpResponse:
    """Every event about one account in a period: who, when, from where."""
    return _history(request, _account(request, account_id))


@_subject_view("export an account's audit history to a CSV file", export=True)
def account_history_export(request: HttpRequest, account_id: int) -> HttpResponse:
    return _export(request, _account(request, account_id), fhir=False)


@_subject_view("export an account's audit history as FHIR AuditEvents", export=True)
def account_history_export_fhir(request: HttpRequest, account_id: int) -> HttpResponse:
    return _export(request, _account(request, account_id), fhir=True)


@_subject_view("read a patient's audit history")
def patient_history(request: HttpRequest, practice_id: int, patient_id: str) -> HttpResponse:
    """Every event about one patient of a practice in a period: who, when, from where."""
    return _history(request, _patient(request, practice_id, patient_id))


@_subject_view("export a patient's audit history to a CSV file", export=True)
def patient_history_export(request: HttpRequest, practice_id: int, patient_id: str):
    return _export(request, _patient(request, practice_id, patient_id), fhir=False)


@_subject_view("export a patient's audit history as FHIR AuditEvents", export=True)
def patient_history_export_fhir(request: HttpRequest, practice_id: int, patient_id: str):
    return _export(request, _patient(request, practice_id, patient_id), fhir=True)
