"""What the project's admin pages share."""

from functools import wraps

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import reauth


class ConfirmedAdminSite(OTPAdminSite):
    """django-otp's admin site (a second factor to enter), whose changes ask who is there.

    Every change made in the admin (a save, an action) waits for the administrator
    to confirm their password and code, as a practice admin's changes to a member
    do (`accounts.reauth`): a session taken over cannot give roles, change an
    address to reset a password to, or reset a second factor. The change, kept,
    runs once confirmed. Signing out of the admin does not ask.
    """

    def admin_view(self, view, cacheable=False):
        if getattr(view, "__name__", "") == "logout":
            return super().admin_view(view, cacheable)

        @wraps(view)
        def confirmed_first(request, *args, **kwargs):
            if request.method == "POST" and not reauth.is_recent(request):
                return reauth.confirm_first(request, label="save your change in the admin")
            return view(request, *args, **kwargs)

        return super().admin_view(confirmed_first, cacheable)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted in the admin: what changes these rows is an
    audited service, or nothing (the log). The library's own extra pages are left out
    (django-otp's authenticator "config" and QR code, which would show its secret)."""

    def get_urls(self):
        return admin.ModelAdmin.get_urls(self)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def shown_only(*models) -> None:
    """Register the libraries' admin pages of `models` again, read-only.

    Each of these rows changes how someone signs in or what a role may do (an
    authenticator, backup codes, sign-in attempts that lock an account, the roles'
    groups); the project changes them through its audited services, never through
    a form over the table.
    """
    for model in models:
        if not admin.site.is_registered(model):
            continue
        library = type(admin.site.get_model_admin(model))
        admin.site.unregister(model)
        admin.site.register(
            model, type(f"ShownOnly{library.__name__}", (ReadOnlyAdmin, library), {})
        )


shown_only(AccessAttempt, AccessFailureLog, AccessLog, TOTPDevice, StaticDevice, Group)
