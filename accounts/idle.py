"""The inactivity clock of a signed-in session.

The server decides: each request by a signed-in user stamps the session with
the time, unless it says it is a background request (the page's own status
check sends `X-Session-Background: 1`), so polling never keeps a session
alive. accounts/middleware.py ends a session idle for SESSION_IDLE_TIMEOUT
seconds before anything else runs.
"""

import time

from django.http import HttpRequest

LAST_ACTIVITY = "last_activity"  # session key: epoch seconds of the last counted request
STAMP_EVERY = 15  # seconds: a session is rewritten at most this often
BACKGROUND_HEADER = "HTTP_X_SESSION_BACKGROUND"


def idle_seconds(request: HttpRequest, now: float | None = None) -> float:
    last = request.session.get(LAST_ACTIVITY)
    return 0.0 if last is None else (now or time.time()) - last


def touch(request: HttpRequest, now: float | None = None) -> None:
    if hasattr(request, "session"):
        request.session[LAST_ACTIVITY] = now or time.time()


def is_background(request: HttpRequest) -> bool:
    return bool(request.META.get(BACKGROUND_HEADER))


def counts_as_activity(request: HttpRequest, now: float) -> bool:
    """Tell whether a request counts: in the foreground, and the last stamp is old enough."""
    last = request.session.get(LAST_ACTIVITY)
    return not is_background(request) and (last is None or now - last >= STAMP_EVERY)
