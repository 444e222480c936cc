"""Every authentication event, in one place: sign-in, password prompts, sign-out, session ends.

Each function writes the audit event, the lockout count and the session record
of one event in one transaction. Views call these; Django's and django-axes'
signals reach them through one adapter each (accounts/receivers.py for
Django's sign-in and sign-out, accounts/lockout.py for axes' failure count).

Password prompts inside a signed-in session (the PIN view, re-authentication,
password change, two-factor changes, a new email address, ending other
sessions) all go through `identity_confirm`: it refuses while the account's
sign-in is locked, counts a wrong password where sign-in failures count, and
records it, so a stolen session cannot guess the password any faster than the
sign-in page allows.
"""

from dataclasses import dataclass
from datetime import datetime

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import logout
from django.contrib.auth.models import update_last_login
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from accounts import idle, lockout, mfa, passkeys, reauth
from accounts.models import User, UserSession
from accounts.session_store import stored_key
from audit import kinds
from audit.services import audit_event_record
from ehr.middleware import USER_AGENT_MAX

EndReason = UserSession.EndReason
PROMPT = "prompt"  # credentials key axes is given for a prompt's failure (accounts/lockout.py)


class PromptPurpose(models.TextChoices):
    REAUTH = "reauth", "confirmation before a sensitive action"
    PIN_VIEW = "pin_view", "PIN view"
    PASSWORD_CHANGE = "password_change", "password change"
    MFA_CHANGE = "mfa_change", "two-factor change"
    EMAIL_CHANGE = "email_change", "email address change"
    PHONE_CHANGE = "phone_change", "phone number change"
    SESSIONS_END = "sessions_end", "signing out other sessions"


_PROMPT_FAILED = {
    PromptPurpose.REAUTH: kinds.REAUTH_FAILED,
    PromptPurpose.PIN_VIEW: kinds.PIN_VIEW_REFUSED,
    PromptPurpose.PASSWORD_CHANGE: kinds.PASSWORD_CHANGE_REFUSED,
    PromptPurpose.MFA_CHANGE: kinds.MFA_CHANGE_REFUSED,
    PromptPurpose.EMAIL_CHANGE: kinds.EMAIL_CHANGE_REFUSED,
    PromptPurpose.PHONE_CHANGE: kinds.PHONE_CHANGE_REFUSED,
    PromptPurpose.SESSIONS_END: kinds.SESSIONS_END_REFUSED,
}


def _ip(request: HttpRequest | None) -> str | None:
    return getattr(request, "client_ip", None)


def _session_row(request: HttpRequest | None):
    key = getattr(getattr(request, "session", None), "session_key", None)
    return UserSession.objects.filter(session_key=stored_key(key)) if key else None


def _record_lock(*, account: User | None, ip: str | None) -> None:
    kind = kinds.SIGN_IN_LOCKED if account else kinds.SIGN_IN_LOCKED_UNKNOWN
    audit_event_record(kind=kind, acting_user=None, account=account, ip=ip)


# Sign-in


def sign_in_succeeded(*, request: HttpRequest, user: User) -> None:
    """Record a completed sign-in: the event, and who signed in from where on its session;
    with them, in one transaction, what Django and axes do on a sign-in (the last sign-in
    time; axes' access log and the user's failed attempts cleared, accounts/receivers.py)."""
    ip = _ip(request)
    with transaction.atomic():
        audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=ip)
        update_last_login(None, user)
        AxesProxyHandler.user_logged_in(None, request, user)
        row = _session_row(request)
        if row is not None:
            row.update(
                user=user,
                ip=ip,
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
                last_seen_at=timezone.now(),
            )
    idle.touch(request)  # the inactivity clock starts at sign-in; re-authentication does not


def sign_in_failed(*, request: HttpRequest, username: str, refused: bool, locked: bool) -> None:
    """Record a sign-in that failed (axes has counted it), and the lock it caused.

    `refused`: sign-in was already locked, so the password was never checked.
    """
    account = User.objects.filter(username=username).first() if username else None
    if refused:
        known, unknown = kinds.SIGN_IN_REFUSED_LOCKED, kinds.SIGN_IN_REFUSED_LOCKED_UNKNOWN
    else:
        known, unknown = kinds.SIGN_IN_FAILED, kinds.SIGN_IN_FAILED_UNKNOWN
    ip = _ip(request)
    with transaction.atomic():
        # The typed name of an unknown account is not recorded: it may be a password.
        audit_event_record(
            kind=known if account else unknown, acting_user=None, account=account, ip=ip
        )
        if locked:
            _record_lock(account=account, ip=ip)


# Password prompts inside a session


@dataclass(frozen=True)
class PromptResult:
    ok: bool
    locked: bool = False  # sign-in (and so every prompt) is locked for this account
    code_wrong: bool = False
    throttled_until: datetime | None = None  # wrong codes: django-otp's delay
    passkey_missing: bool = False  # the passkey was chosen but not used (or too long ago)


def identity_confirm(
    *,
    request: HttpRequest,
    password: str,
    purpose: PromptPurpose,
    method: str | None = None,
    code: str | None = None,
) -> PromptResult:
    """Check the signed-in user's password, then the second factor where they have one.

    The second factor is a code of the kind `method` names, or a passkey used on
    the page just before (`method` is "passkey": its proof waits in the session).

    The acting user is the request's. Refused without looking while sign-in
    is locked for this account and address; a wrong password counts towards
    that lock and is recorded with its purpose (and the lock, if it caused
    one), in the account's turn (`lockout.guesses_in_turn`), so prompts sent
    together check no more passwords than the lock allows. Success starts the
    re-authentication window.
    """
    user = request.user
    credentials = {"username": user.get_username(), PROMPT: purpose.value}
    ip = _ip(request)
    with lockout.guesses_in_turn(user.get_username()):
        if AxesProxyHandler.is_locked(request, credentials):
            audit_event_record(
                kind=kinds.PASSWORD_PROMPT_REFUSED_LOCKED,
                acting_user=user,
                account=user,
                ip=ip,
                params={"purpose": purpose.label},
            )
            return PromptResult(ok=False, locked=True)
        if not user.check_password(password):
            AxesProxyHandler.user_login_failed(
                sender=identity_confirm, credentials=credentials, request=request
            )
            audit_event_record(kind=_PROMPT_FAILED[purpose], acting_user=user, account=user, ip=ip)
            locked = AxesProxyHandler.is_locked(request, credentials)
            if locked:  # it was not before this failure
                _record_lock(account=user, ip=ip)
            return PromptResult(ok=False, locked=locked)
    if method == passkeys.PASSKEY and passkeys.has_passkey(user):
        # The passkey was checked (and any failure counted) when it was used on the page.
        if not passkeys.passkey_proof_take(request):
            return PromptResult(ok=False, passkey_missing=True)
    elif mfa.mfa_enrolled(user):
        check = mfa.mfa_check(acting_user=user, method=method or "", code=code or "", ip=ip)
        if not check.ok:
            return PromptResult(ok=False, code_wrong=True, throttled_until=check.throttled_until)
    reauth.stamp(request)
    return PromptResult(ok=True)


# Sign-out and the end of sessions


def _record_sign_out(request: HttpRequest, user: User, reason: str) -> None:
    """Record why the request's session ends, once.

    The row is marked ended first: the signal Django's logout() then sends
    finds it ended and records nothing more. (logout() deletes the row.)
    """
    row = _session_row(request)
    if row is not None and not row.filter(ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason
    ):
        return  # already ended and recorded
    ip = _ip(request)
    if reason == EndReason.SIGNED_OUT:
        audit_event_record(kind=kinds.SIGNED_OUT, acting_user=user, account=user, ip=ip)
    elif reason == EndReason.IDLE:
        audit_event_record(
            kind=kinds.SIGNED_OUT_AUTOMATICALLY, acting_user=None, account=user, ip=ip
        )
    else:  # ended by the server because of something done elsewhere
        _record_revocation(account=user, acting_user=None, ip=ip, count=1)


def sign_out_record(*, request: HttpRequest, user: User) -> None:
    """Record that `user` signed out (Django's logout() tells us through its signal)."""
    with transaction.atomic():
        _record_sign_out(request, user, EndReason.SIGNED_OUT)


def sign_out(*, request: HttpRequest, reason: str) -> None:
    """Sign the request's user out by the server's decision, recorded with its reason."""
    with transaction.atomic():
        _record_sign_out(request, request.user, reason)
    logout(request)


def _record_cap(session: UserSession, *, ip: str | None) -> None:
    audit_event_record(kind=kinds.SESSION_CAPPED, acting_user=None, account=session.user, ip=ip)


def session_cap_record(*, request: HttpRequest, session: UserSession) -> None:
    """Record the end of a session that reached SESSION_MAX_HOURS (it no longer loads)."""
    with transaction.atomic():
        ended = UserSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=EndReason.SESSION_CAP, session_data=""
        )
        if ended:
            _record_cap(session, ip=_ip(request))


@transaction.atomic
def sessions_clear_expired() -> int:
    """Delete expired sessions, recording the end of signed-in ones nobody came back to."""
    expired = UserSession.objects.filter(expire_date__lt=timezone.now())
    for session in expired.filter(user__isnull=False, ended_at__isnull=True).select_related("user"):
        _record_cap(session, ip=None)
    return expired.delete()[0]


def _record_revocation(
    *, account: User, acting_user: User | None, ip: str | None, count: int
) -> None:
    audit_event_record(
        kind=kinds.SESSION_REVOKED,
        acting_user=acting_user,
        account=account,
        ip=ip,
        params={"count": count, "sessions": ngettext("session", "sessions", count)},
    )


def _end(sessions, reason: str) -> int:
    """End live sessions now: they keep their rows, without data, so nothing loads them."""
    return sessions.filter(ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason, session_data=""
    )


@transaction.atomic
def session_end(*, account: User, session_key: str, acting_user: User, ip: str | None) -> bool:
    """Sign out one of `account`'s sessions remotely (`session_key` as stored: hashed)."""
    ended = _end(
        UserSession.objects.filter(user=account, session_key=session_key), EndReason.REVOKED
    )
    if ended:
        _record_revocation(account=account, acting_user=acting_user, ip=ip, count=ended)
    return bool(ended)


@transaction.atomic
def sessions_end_all(
    *,
    account: User,
    acting_user: User | None,
    ip: str | None,
    keep_session_key: str | None = None,
    reason: str = EndReason.REVOKED,
) -> int:
    """Sign out every session of `account` but the one whose cookie key is `keep_session_key`.

    Only a revocation records its own event; a password change or a
    deactivation records the change that ended the sessions.
    """
    sessions = UserSession.objects.filter(user=account)
    if keep_session_key:
        sessions = sessions.exclude(session_key=stored_key(keep_session_key))
    ended = _end(sessions, reason)
    if ended and reason == EndReason.REVOKED:
        _record_revocation(account=account, acting_user=acting_user, ip=ip, count=ended)
    return ended
