from django.urls import path

import ehr.converters  # noqa: F401  (registers the id and patient id converters)
from audit import dashboard_views, subject_views, views

urlpatterns = [
    path("audit/", views.audit_report, name="audit_report"),
    path("audit/dashboard/", dashboard_views.audit_dashboard, name="audit_dashboard"),
    path("audit/integrity/", views.audit_integrity, name="audit_integrity"),
    path("audit/patients.json", views.audit_patients, name="audit_patients"),
    path("audit/practices.json", views.audit_practices, name="audit_practices"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("audit/export.fhir.json", views.audit_export_fhir, name="audit_export_fhir"),
    path("audit/evidence.jsonl", views.audit_evidence, name="audit_evidence"),
    # Who touched this account or patient (audit/subject_views.py).
    path(
        "audit/subject/account/<id:account_id>/",
        subject_views.account_history,
        name="audit_subject_account",
    ),
    path(
        "audit/subject/account/<id:account_id>/export.csv",
        subject_views.account_history_export,
        name="audit_subject_account_export",
    ),
    path(
        "audit/subject/account/<id:account_id>/export.fhir.json",
        subject_views.account_history_export_fhir,
        name="audit_subject_account_export_fhir",
    ),
    path(
        "audit/subject/patient/<id:practice_id>/<patient_id:patient_id>/",
        subject_views.patient_history,
        name="audit_subject_patient",
    ),
    path(
        "audit/subject/patient/<id:practice_id>/<patient_id:patient_id>/export.csv",
        subject_views.patient_history_export,
        name="audit_subject_patient_export",
    ),
    path(
        "audit/subject/patient/<id:practice_id>/<patient_id:patient_id>/export.fhir.json",
        subject_views.patient_history_export_fhir,
        name="audit_subject_patient_export_fhir",
    ),
]
