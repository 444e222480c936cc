"""Re-authentication before sensitive actions: one mechanism, used as a decorator.

Confirming the password (and the second factor where the account has one) at
any prompt inside the session stamps it (accounts/auth_events.py,
`identity_confirm`); signing in does not. A view wrapped in
`recent_auth_required` runs only within REAUTH_SECONDS of that stamp.

Otherwise the request is kept as the session's *pending action* and the user is
asked to confirm; once they have, the action happens, once:

- a POST (Generate New PIN, opening break-glass access, a practice admin's
  change to a member) runs with the form it was sent with;
- a GET that downloads a file (the audit exports) is answered with a page that
  says so and starts the download, so the prompt is never what gets saved;
- any other GET is simply opened.

What keeps a pending action from being turned against its user:

- It lives in the server-side session only, with the id of the user who sent
  it; the prompt names it by a random id, and a confirmation performs only the
  action whose id its own form carries (a pending action replaced since the
  prompt was shown is dropped, never performed).
- A POST is kept only after Django's CSRF check accepted it, so a forged
  cross-site form never becomes one; its fields come from the session, never
  from the confirmation's form. Passwords and codes (the view's
  `sensitive_post_parameters`) and files are never kept.
- It is taken out of the session when a confirmation succeeds (used once,
  whether it runs or not, and once however many confirmations are sent
  together), and is void REAUTH_SECONDS after it was sent, the same window a
  confirmation lasts.
"""

import copy
import secrets
import time
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.crypto import constant_time_compare
from django.utils.datastructures import MultiValueDict
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from accounts.models import UserSession
from accounts.session_store import stored_key

REAUTH_AT = "reauth_at"  # session key: epoch seconds of the last confirmed identity
PENDING = "reauth_pending"  # session key: the action waiting for a confirmation
PENDING_MAX_CHARS = 20_000  # a form bigger than this is not kept in the session
DEFAULT_LABEL = "continue what you were doing"


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


def recent_auth_required(view=None, *, label: str = DEFAULT_LABEL, download: bool = False):
    """Run the view only if the user confirmed who they are in the last few minutes.

    Otherwise keep the request as the pending action and ask first. `label`
    says on the prompt what will happen once confirmed ("generate a new
    Support PIN"); `download`: the view answers with a file to save.
    Usable bare (`@recent_auth_required`) or with arguments.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            asked = confirm_unless_recent(request, label=label, download=download)
            return asked if asked is not None else view(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


def confirm_unless_recent(
    request: HttpRequest, *, label: str = DEFAULT_LABEL, download: bool = False
) -> HttpResponse | None:
    """Return the prompt (the request kept as its pending action) unless the user confirmed
    who they are within the window; None to go on.

    For a view that asks only once its form is complete (a note written, an outcome
    chosen), so that a missing field is said before the password is asked for.
    """
    if request.user.is_authenticated and not is_recent(request):
        return confirm_first(request, label=label, download=download)
    return None


def _back(request: HttpRequest) -> str | None:
    """Return the path of the page the request came from, if it is this site's."""
    referer = safe_next(request, request.META.get("HTTP_REFERER"), "")
    if not referer:
        return None
    parts = urlsplit(referer)
    # The path alone, checked again: a path of this site such as `//evil.example/x` is,
    # on its own, a link to another site.
    return safe_next(request, parts.path + (f"?{parts.query}" if parts.query else ""), "") or None


def confirm_first(request: HttpRequest, *, label: str = DEFAULT_LABEL, download: bool = False):
    """Keep the request as the pending action and send the user to confirm who they are."""
    action = pending_action_keep(request, label=label, download=download)
    if action is None:  # not kept (a file, an oversized form): come back to the page instead
        back = _back(request) or reverse("home")
        messages.info(request, "Please confirm it is you, then do that again.")
        return redirect(f"{reverse('reauth')}?{urlencode({'next': back})}")
    messages.info(request, "Please confirm it is you to continue.")
    return redirect(f"{reverse('reauth')}?{urlencode({'action': action.id})}")


@dataclass(frozen=True)
class PendingAction:
    """A request that waits for its user to confirm who they are (kept in the session)."""

    id: str
    user: int
    at: float
    method: str  # "GET" or "POST"
    path: str
    query: str
    data: list[tuple[str, str]]  # the POST's fields, without the CSRF token and secrets
    label: str
    download: bool
    back: str | None  # the page it was started from

    @property
    def url(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def as_session(self) -> dict:
        return {**self.__dict__, "data": [list(pair) for pair in self.data]}

    @classmethod
    def from_session(cls, raw) -> "PendingAction | None":
        try:
            return cls(**{**raw, "data": [tuple(pair) for pair in raw["data"]]})
        except (TypeError, KeyError, ValueError):
            return None


def pending_action_keep(
    request: HttpRequest, *, label: str, download: bool
) -> PendingAction | None:
    """Keep `request` as the session's one pending action (replacing any other); return it.

    Nothing is kept for a POST the CSRF check did not accept, one with files,
    or one too big for the session.
    """
    data: list[tuple[str, str]] = []
    if request.method == "POST":
        if not getattr(request, "csrf_processing_done", False) or request.FILES:
            return None
        secret = set(getattr(request, "sensitive_post_parameters", ()) or ())
        if secret == {"__ALL__"}:
            return None
        data = [
            (name, value)
            for name, values in request.POST.lists()
            if name != "csrfmiddlewaretoken" and name not in secret
            for value in values
        ]
        if sum(len(name) + len(value) for name, value in data) > PENDING_MAX_CHARS:
            return None
    elif request.method not in ("GET", "HEAD"):
        return None
    action = PendingAction(
        id=secrets.token_urlsafe(18),
        user=request.user.pk,
        at=time.time(),
        method="POST" if request.method == "POST" else "GET",
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
        data=data,
        label=label,
        download=download,
        back=_back(request),
    )
    request.session[PENDING] = action.as_session()
    return action


def _valid(request: HttpRequest, action: PendingAction | None, action_id: str | None):
    return (
        action is not None
        and bool(action_id)
        and constant_time_compare(action.id, action_id)
        and action.user == request.user.pk
        and 0 <= time.time() - action.at <= settings.REAUTH_SECONDS
    )


def pending_action_get(request: HttpRequest, action_id: str | None) -> PendingAction | None:
    """Return the session's pending action if it is `action_id`'s, this user's and in time."""
    action = PendingAction.from_session(request.session.get(PENDING))
    return action if _valid(request, action, action_id) else None


def pending_action_take(request: HttpRequest, action_id: str | None) -> PendingAction | None:
    """Take the pending action out of the session (always: used once); return it if valid.

    Read it from the session as stored, under its row's lock, and store the session
    without it before the lock goes: of confirmations sent together, which each
    loaded the session with the action in it, the first takes it and the others find
    it gone.
    """
    session = request.session
    with transaction.atomic():
        row = (
            UserSession.objects.select_for_update()
            .filter(session_key=stored_key(session.session_key or ""), ended_at__isnull=True)
            .first()
        )
        stored = session.decode(row.session_data) if row is not None else {}
        session.pop(PENDING, None)
        raw = stored.get(PENDING)
        if raw is None:
            return None
        session.save()
    action = PendingAction.from_session(raw)
    return action if _valid(request, action, action_id) else None


def pending_action_run(request: HttpRequest, action: PendingAction) -> HttpResponse:
    """Perform the action the user confirmed; call only right after a confirmation."""
    if action.method == "GET":
        if action.download:
            context = {"action": action, "back": action.back or reverse("home")}
            return render(request, "accounts/reauth_download.html", context)
        return redirect(action.url)
    try:
        match = resolve(action.path)
    except Resolver404:
        return redirect(action.back or "home")
    # The view runs as if the kept form had just been sent again, by the same user in
    # the same session (its own decorators check everything once more).
    replay = copy.copy(request)
    replay.method = "POST"
    replay.path = replay.path_info = action.path
    replay.META = {
        **request.META,
        "REQUEST_METHOD": "POST",
        "PATH_INFO": action.path,
        "QUERY_STRING": action.query,
    }
    replay.GET = QueryDict(action.query)
    form = QueryDict(mutable=True)
    for name, value in action.data:
        form.appendlist(name, value)
    form._mutable = False
    replay.POST = form
    replay._files = MultiValueDict()
    replay.resolver_match = match
    return match.func(replay, *match.args, **match.kwargs)
