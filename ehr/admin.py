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
                label = self.change_plainly(request)
                asked = reauth.confirm_unless_recent(request, label=label)
                if asked is not None:
                    return asked
            return view(request, *args, **kwargs)

        return super().admin_view(confirmed_first, cacheable)

    def change_plainly(self, request) -> str:
        """Make the posted change say one thing only, and return what it does in words: what
        the prompt says is what the administrator approves, so it must be what runs.

        An action runs on the rows ticked, never on "all N" of a list (`select_across`,
        which a list's filters in the address would decide); of several `action` values
        the one Django picks (`index`) is kept alone; "save as new" on a model that does
        not offer it is dropped. The kept form is this one.
        """
        match = request.resolver_match
        name = getattr(match, "url_name", "") or ""
        for model, model_admin in self._registry.items():
            opts = model._meta
            what = name.removeprefix(f"{opts.app_label}_{opts.model_name}_")
            if what == name:
                continue
            post = request.POST.copy()
            post.pop("select_across", None)
            if not model_admin.save_as:
                post.pop("_saveasnew", None)
            label = None
            if what == "changelist" and "action" in post:
                label = self._action_plainly(request, model_admin, post)
            elif what == "add" or "_saveasnew" in post:
                label = f"add a {opts.verbose_name} in the admin"
            elif what == "change":
                found = model_admin.get_object(request, unquote(match.kwargs["object_id"]))
                if found is not None:
                    label = f"save your change to {opts.verbose_name} “{found}” in the admin"
            post._mutable = False
            request.POST = post
            return label or "save your change in the admin"
        return "save your change in the admin"

    def _action_plainly(self, request, model_admin, post) -> str:
        actions = post.getlist("action")
        try:
            chosen = actions[int(post.get("index", 0))]
        except (ValueError, IndexError):
            chosen = ""
        post.setlist("action", [chosen])
        post["index"] = "0"
        known = model_admin.get_actions(request).get(chosen)
        if known is None:
            return "nothing: that is no action of this list"
        rows = len(post.getlist(helpers.ACTION_CHECKBOX_NAME))
        opts = model_admin.model._meta
        noun = opts.verbose_name if rows == 1 else opts.verbose_name_plural
        return f"{known[2]}: {rows} {noun}, ticked one by one"


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
    (django-otp's authenticator "config" and QR code, which would show its secret), and
    so are its actions (django-axes' "Clean up expired attempts" deletes rows)."""

    actions = None  # Django's way to offer none, the library's included

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
