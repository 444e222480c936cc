"""Server-side inactivity timeout.

The server decides: each request by a signed-in user stamps the session with
the time, unless it says it is a background request (the page's own status
check sends `X-Session-Background: 1`), so polling never keeps a session
alive. A request that arrives after SESSION_IDLE_TIMEOUT seconds of
inactivity ends the session on the server before anything else runs, and is
recorded as an automatic sign-out.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

LAST_ACTIVITY = "last_activity"  # session key: epoch seconds of the last counted request
STAMP_EVERY = 15  # seconds: a session is rewritten at most this often
BACKGROUND_HEADER = "HTTP_X_SESSION_BACKGROUND"


def idle_seconds(request: HttpRequest, now: float | None = None) -> float:
    last = request.session.get(LAST_ACTIVITY)
    return 0.0 if last is None else (now or time.time()) - last


def touch(request: HttpRequest, now: float | None = None) -> None:
    request.session[LAST_ACTIVITY] = now or time.time()


class InactivityTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            if idle_seconds(request, now) > settings.SESSION_IDLE_TIMEOUT:
                request.automatic_sign_out = True  # audit.signals records it as automatic
                logout(request)
                if request.META.get(BACKGROUND_HEADER):
                    return JsonResponse({"signed_in": False}, status=401)
                minutes = settings.SESSION_IDLE_TIMEOUT // 60
                messages.info(
                    request, f"You were signed out after {minutes} minutes of inactivity."
                )
                return redirect_to_login(request.get_full_path())
            last = request.session.get(LAST_ACTIVITY)
            if not request.META.get(BACKGROUND_HEADER) and (
                last is None or now - last >= STAMP_EVERY
            ):
                touch(request, now)
        return self.get_response(request)


def stamp_at_sign_in(sender, request, user, **kwargs) -> None:
    """Signing in is activity: the idle clock starts then."""
    if request is not None and hasattr(request, "session"):
        touch(request)


@never_cache
@require_GET
def session_status(request: HttpRequest) -> JsonResponse:
    """How long until the session ends; a background request, so it changes nothing."""
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False}, status=401)
    remaining = max(0, settings.SESSION_IDLE_TIMEOUT - int(idle_seconds(request)))
    return JsonResponse({"signed_in": True, "remaining": remaining})


@never_cache
@require_POST
def session_keepalive(request: HttpRequest) -> JsonResponse:
    """ "Stay signed in": a deliberate action, so it counts as activity."""
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False}, status=401)
    touch(request)
    return JsonResponse({"signed_in": True, "remaining": settings.SESSION_IDLE_TIMEOUT})
