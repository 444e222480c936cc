from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from ehr import views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("accounts.urls")),
    path("", include("audit.urls")),
    path("", include("support_pin.urls")),
    path("admin/", admin.site.urls),
]
