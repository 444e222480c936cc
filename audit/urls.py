from django.urls import path

from audit import dashboard_views, views

urlpatterns = [
    path("audit/", views.audit_report, name="audit_report"),
    path("audit/dashboard/", dashboard_views.audit_dashboard, name="audit_dashboard"),
    path("audit/integrity/", views.audit_integrity, name="audit_integrity"),
    path("audit/patients.json", views.audit_patients, name="audit_patients"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("audit/export.fhir.json", views.audit_export_fhir, name="audit_export_fhir"),
    path("audit/evidence.jsonl", views.audit_evidence, name="audit_evidence"),
]
