from django.urls import path

from support_pin import views

urlpatterns = [
    path("account/pins/support/", views.support_pin_view, name="support_pin_view"),
    path("account/pins/support/generate/", views.support_pin_generate, name="support_pin_generate"),
    path("account/pins/app/", views.app_pin_view_edit, name="app_pin_view_edit"),
    path("account/pins/shown/", views.pin_shown, name="pin_shown"),
    path("support/validate/", views.support_console, name="support_console"),
    path("support/validate/pin/", views.support_console_validate, name="support_console_validate"),
]
