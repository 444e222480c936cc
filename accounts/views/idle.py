"""The page's own inactivity check and its "Stay signed in" button."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import idle


@never_cache
@require_GET
def session_status(request: HttpRequest) -> JsonResponse:
    """How long until the session ends; a background request, so it changes nothing."""
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False}, status=401)
    remaining = max(0, settings.SESSION_IDLE_TIMEOUT - int(idle.idle_seconds(request)))
    return JsonResponse({"signed_in": True, "remaining": remaining})


@never_cache
@require_POST
def session_keepalive(request: HttpRequest) -> JsonResponse:
    """ "Stay signed in": a deliberate action, so it counts as activity."""
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False}, status=401)
    idle.touch(request)
    return JsonResponse({"signed_in": True, "remaining": settings.SESSION_IDLE_TIMEOUT})
