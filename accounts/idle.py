"""The inactivity clock of a signed-in session.

The server decides: each request by a signed-in user stamps the session with
the time, unless it says it is a background request (the page's own status
check sends `X-Session-Background: 1`), so polling never keeps a session
alive, nor a request another site sent or a part a page loads (`ELSEWHERE`,
`DOING`). accounts/middleware.py ends a session idle for SESSION_IDLE_TIMEOUT
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


# Requests another site's page sent (a link, a window it opens or reloads), as the
# browser's Fetch Metadata says: a page left open elsewhere could otherwise keep an
# unattended session alive by opening the site again and again. Someone who follows
# a link from their mail goes on in the site, whose own requests count.
ELSEWHERE = ("cross-site", "same-site")
# What a person's doing sends: a page (a link, a form, an address typed) or the page's
# own script (Stay signed in). A picture or a script a page loads is not, and counting
# it would let a page another site opened keep the session alive through its parts.
# Browsers without Fetch Metadata send neither header: their requests count.
DOING = (None, "document", "empty")


def counts_as_activity(request: HttpRequest, now: float) -> bool:
    """Tell whether a request counts: in the foreground, sent by this site's own pages (or
    typed), a page or the page's own call, and the last stamp is old enough."""
    meta = request.META
    if (
        is_background(request)
        or meta.get("HTTP_SEC_FETCH_SITE") in ELSEWHERE
        or meta.get("HTTP_SEC_FETCH_DEST") not in DOING
    ):
        return False
    last = request.session.get(LAST_ACTIVITY)
    return last is None or now - last >= STAMP_EVERY
