from django.contrib import admin
from django.urls import include, path

from accounts.views import profile as account_views
from ehr import views
from ehr.admin import ConfirmedAdminSite

# The Django admin: superusers (is_staff) whose session passed two-factor
# authentication, confirming who they are before each change; everyone else signs in
# through the site's own sign-in.
admin.site.__class__ = ConfirmedAdminSite
admin.site.login = views.admin_login
admin.site.password_change = views.admin_password_change

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("accounts.urls")),
    path("", include("audit.urls")),
    path("", include("support_pin.urls")),
    path("", include("break_glass.urls")),
    path("", include("outbox.urls")),
    path("", include("alerts.urls")),
    path("admin/", admin.site.urls),
]
