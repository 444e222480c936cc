"""What the project's admin pages share."""

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted in the admin: what changes these rows is an
    audited service, or nothing (the log)."""

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
