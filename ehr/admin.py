"""What the project's admin pages share."""

from functools import wraps

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
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
            if request.method == "POST":
                asked = reauth.confirm_unless_recent(request, label=self.change_label(request))
                if asked is not None:
                    return asked
            return view(request, *args, **kwargs)

        return super().admin_view(confirmed_first, cacheable)

    def change_label(self, request) -> str:
        """What the prompt says will happen: which action on how many rows, or the change
        to which row; it is what the administrator approves."""
        name = getattr(request.resolver_match, "url_name", "") or ""
        for model, model_admin in self._registry.items():
            opts = model._meta
            what = name.removeprefix(f"{opts.app_label}_{opts.model_name}_")
            if what == name:
                continue
            if what == "changelist" and request.POST.get("action"):
                action = model_admin.get_actions(request).get(request.POST["action"])
                rows = len(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
                noun = opts.verbose_name if rows == 1 else opts.verbose_name_plural
                described = action[2] if action else request.POST["action"]
                return f"{described}: {rows} {noun}"
            if what == "add":
                return f"add a {opts.verbose_name} in the admin"
            if what == "change":
                key = unquote(request.resolver_match.kwargs["object_id"])
                found = model_admin.get_object(request, key)
                if found is not None:
                    return f"save your change to {opts.verbose_name} “{found}” in the admin"
        return "save your change in the admin"


class ConfirmedFormAdmin(admin.ModelAdmin):
    """An admin page whose form may be shown by a confirmation's replay (`ConfirmedAdminSite`).

    Shown there, at the prompt's address, a form without an address of its own
    would post the corrections to the prompt: it posts back to its own page.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(
            request, object_id, form_url or request.get_full_path(), extra_context
        )


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
