from django.urls import path

import ehr.converters  # noqa: F401  (registers the id converters)
from alerts import views

urlpatterns = [
    path("audit/alerts/", views.alert_list, name="alert_list"),
    path("audit/alerts/<id:alert_id>/", views.alert_detail, name="alert_detail"),
    path(
        "audit/alerts/<id:alert_id>/acknowledge/",
        views.alert_acknowledge,
        name="alert_acknowledge",
    ),
]
