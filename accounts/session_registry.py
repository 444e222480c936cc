"""The user's sessions: recorded at sign-in, checked on every request, ended remotely.

A session ended from elsewhere (the Security tab, a practice admin, a password
change) is signed out on its very next request: the middleware looks its
record up by the hash of its key, one indexed query.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import User, UserSession
from accounts.session_store import stored_key
from audit import kinds
from audit.services import audit_event_record
from ehr.client_ip import client_ip

SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is rewritten at most this often


def key_hash(session_key: str) -> str:
    return stored_key(session_key)


def browser_summary(user_agent: str) -> str:
    """`Chrome on Windows` from a User-Agent string.

    Written here rather than with a parsing library: the maintained ones carry large
    rule files, and the Security tab needs only the browser family and the system.
    """
    ua = user_agent or ""
    browser = next(
        (
            name
            for token, name in (
                ("Edg/", "Edge"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
            )
            if token in ua
        ),
        "Unknown browser",
    )
    system = next(
        (
            name
            for token, name in (
                ("Windows", "Windows"),
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("iPad", "iPad"),
                ("Mac OS X", "macOS"),
                ("Linux", "Linux"),
            )
            if token in ua
        ),
        "unknown system",
    )
    return f"{browser} on {system}"


def session_started(sender, request, user, **kwargs) -> None:
    """user_logged_in: record the new session (its key was just cycled)."""
    if request is None or not hasattr(request, "session"):
        return
    if request.session.session_key is None:
        request.session.save()
    UserSession.objects.update_or_create(
        key_hash=key_hash(request.session.session_key),
        defaults={
            "user": user,
            "ip": getattr(request, "client_ip", None) or client_ip(request),
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:256],
            "last_seen_at": timezone.now(),
            "ended_at": None,
            "end_reason": "",
        },
    )


def session_signed_out(sender, request, user, **kwargs) -> None:
    """user_logged_out: the session ends here (it may already be marked ended)."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        UserSession.objects.filter(key_hash=key_hash(key), ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=UserSession.EndReason.SIGNED_OUT
        )


def session_rekeyed(*, old_key: str | None, new_key: str | None) -> None:
    """Follow a session whose key changed (Django cycles it after a password change)."""
    if old_key and new_key and old_key != new_key:
        UserSession.objects.filter(key_hash=key_hash(old_key)).update(key_hash=key_hash(new_key))


def _end(sessions, reason: str) -> int:
    """Mark sessions ended and delete them from the session store at once."""
    live = sessions.filter(ended_at__isnull=True)
    # The store keeps sessions under the same SHA-256 (accounts/session_store.py).
    Session.objects.filter(session_key__in=list(live.values_list("key_hash", flat=True))).delete()
    return live.update(ended_at=timezone.now(), end_reason=reason)


@transaction.atomic
def session_end(*, user: User, session_id: int, acting_user: User, ip: str | None) -> bool:
    """Sign out one of `user`'s sessions remotely."""
    ended = _end(
        UserSession.objects.filter(user=user, pk=session_id), UserSession.EndReason.REVOKED
    )
    if ended:
        audit_event_record(
            kind=kinds.SESSION_REVOKED,
            acting_user=acting_user,
            account=user,
            ip=ip,
            params={"count": ended},
        )
    return bool(ended)


@transaction.atomic
def sessions_end_all(
    *,
    user: User,
    acting_user: User | None,
    ip: str | None,
    keep_key: str | None = None,
    reason: str = UserSession.EndReason.REVOKED,
) -> int:
    """Sign out every session of `user` (but the one whose key is `keep_key`)."""
    sessions = UserSession.objects.filter(user=user)
    if keep_key:
        sessions = sessions.exclude(key_hash=key_hash(keep_key))
    ended = _end(sessions, reason)
    if ended and reason == UserSession.EndReason.REVOKED:
        audit_event_record(
            kind=kinds.SESSION_REVOKED,
            acting_user=acting_user,
            account=user,
            ip=ip,
            params={"count": ended},
        )
    return ended


def active_sessions(*, user: User) -> list[UserSession]:
    return list(
        UserSession.objects.filter(user=user, ended_at__isnull=True).order_by("-last_seen_at")
    )


# What a browser is told when it comes back with the cookie of a session ended elsewhere.
ENDED_ELSEWHERE = {
    UserSession.EndReason.REVOKED: "This session was signed out from another session.",
    UserSession.EndReason.PASSWORD_CHANGED: (
        "This session was signed out because the account's password was changed."
    ),
    UserSession.EndReason.DEACTIVATED: "This session was signed out: the account is deactivated.",
}


def _explain_ended_session(request: HttpRequest) -> None:
    """Say why, when the cookie names a session that was ended remotely.

    Ended sessions are deleted from the store at once, so the browser arrives
    signed out; its cookie still hashes to the session's record. Django's session
    middleware then deletes the stale cookie, so this is said once.
    """
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not cookie or request.session.session_key is not None:
        return
    reason = (
        UserSession.objects.filter(key_hash=key_hash(cookie), ended_at__isnull=False)
        .values_list("end_reason", flat=True)
        .first()
    )
    if reason in ENDED_ELSEWHERE:
        messages.info(request, ENDED_ELSEWHERE[reason])


class SessionRegistryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and not user.is_authenticated:
            _explain_ended_session(request)
        key = request.session.session_key
        if user is not None and user.is_authenticated and key:
            digest = key_hash(key)
            record = (
                UserSession.objects.filter(key_hash=digest)
                .only("id", "ended_at", "last_seen_at", "user_id")
                .first()
            )
            if record is not None and (record.ended_at is not None or record.user_id != user.pk):
                logout(request)
                messages.info(request, "This session was signed out from another session.")
                return redirect_to_login(request.get_full_path())
            now = timezone.now()
            if record is None:
                session_started(None, request, user)
            elif now - record.last_seen_at >= SEEN_EVERY:
                UserSession.objects.filter(pk=record.pk).update(last_seen_at=now)
            request.user_session_id = record.pk if record else None
        return self.get_response(request)
