"""Project-wide views."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. No login, no database, no details."""
    return HttpResponse("ok\n", content_type="text/plain")


def admin_login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """The admin's sign-in is the site's own (with its code step and lockout)."""
    if request.user.is_authenticated:
        messages.info(
            request, "The admin is for superusers with two-factor authentication turned on."
        )
        return redirect("security")
    return redirect_to_login(request.get_full_path())


def admin_password_change(request: HttpRequest, extra_context=None) -> HttpResponse:
    """The admin's own password change is the site's (behind the one password gate)."""
    return redirect("password_change")
