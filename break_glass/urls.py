from django.urls import path

import ehr.converters  # noqa: F401  (registers the id converters)
from break_glass import views

urlpatterns = [
    path("support/break-glass/<id:account_id>/", views.break_glass_open, name="break_glass_open"),
    path(
        "support/break-glass/grant/<id:grant_id>/",
        views.break_glass_grant,
        name="break_glass_grant",
    ),
    path(
        "support/break-glass/grant/<id:grant_id>/rotate-pin/",
        views.break_glass_rotate_pin,
        name="break_glass_rotate_pin",
    ),
    path(
        "support/break-glass/grant/<id:grant_id>/end/",
        views.break_glass_end,
        name="break_glass_end",
    ),
    path("audit/break-glass/", views.break_glass_list, name="break_glass_list"),
    path(
        "audit/break-glass/<id:grant_id>/review/",
        views.break_glass_review,
        name="break_glass_review",
    ),
]
