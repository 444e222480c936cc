"""Re-authentication before sensitive actions: one mechanism, used as a decorator.

Confirming the password (and the second factor where the account has one) at
any prompt inside the session stamps it (accounts/auth_events.py,
`identity_confirm`); signing in does not. A view wrapped in
`recent_auth_required` runs only within REAUTH_SECONDS of that stamp;
otherwise the user is sent to confirm it and then back to the page.
"""

import time
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

REAUTH_AT = "reauth_at"  # session key: epoch seconds of the last confirmed identity


def stamp(request: HttpRequest) -> None:
    request.session[REAUTH_AT] = time.time()


def is_recent(request: HttpRequest) -> bool:
    at = request.session.get(REAUTH_AT)
    return at is not None and time.time() - at <= settings.REAUTH_SECONDS


def safe_next(request: HttpRequest, candidate: str | None, default: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def recent_auth_required(view):
    """Run `view` only if the user confirmed who they are in the last few minutes."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.user.is_authenticated and not is_recent(request):
            return confirm_first(request)
        return view(request, *args, **kwargs)

    return wrapper


def confirm_first(request: HttpRequest):
    """Send the user to confirm who they are, then back to where they were."""
    # A POST cannot be replayed after the detour: come back to the page it came from.
    back = request.get_full_path()
    if request.method != "GET":
        referer = safe_next(request, request.META.get("HTTP_REFERER"), reverse("home"))
        parts = urlsplit(referer)
        back = parts.path + (f"?{parts.query}" if parts.query else "")
    messages.info(request, "Please confirm it is you to continue.")
    return redirect(f"{reverse('reauth')}?{urlencode({'next': back})}")
