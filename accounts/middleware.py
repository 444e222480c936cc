"""What every request checks about its session, in order: ended or capped, idle, two-factor;
and the time zone its pages are shown in."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils import timezone

from accounts import auth_events, idle, mfa, passkeys
from accounts.models import UserSession

EndReason = UserSession.EndReason

# What a browser is told when it comes back with the cookie of a session ended elsewhere.
ENDED_ELSEWHERE = {
    EndReason.REVOKED: "This session was signed out remotely: from another of your sessions, or by an administrator.",
    EndReason.PASSWORD_CHANGED: (
        "This session was signed out because the account's password was changed."
    ),
    EndReason.DEACTIVATED: "This session was signed out: the account is deactivated.",
    EndReason.SESSION_CAP: "This session reached its time limit. Please sign in again.",
}


class SessionGuardMiddleware:
    """Tell a browser why its session ended; record a session that reached its time limit.

    An ended or expired session never loads (accounts/session_store.py), so the
    request arrives signed out; its row still says why. Django's session
    middleware then drops the stale cookie, so this is said once.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated and settings.SESSION_COOKIE_NAME in request.COOKIES:
            record = request.session.record
            if record is not None and record.user_id is not None:
                if record.ended_at is None and record.expire_date <= timezone.now():
                    auth_events.session_cap_record(request=request, session=record)
                    record.end_reason = EndReason.SESSION_CAP
                if record.end_reason in ENDED_ELSEWHERE:
                    messages.info(request, ENDED_ELSEWHERE[record.end_reason])
        return self.get_response(request)


class IdleTimeoutMiddleware:
    """End a session idle for SESSION_IDLE_TIMEOUT seconds, on the server, before the view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            if idle.idle_seconds(request, now) > settings.SESSION_IDLE_TIMEOUT:
                auth_events.sign_out(request=request, reason=EndReason.IDLE)
                if idle.is_background(request):
                    return JsonResponse({"signed_in": False}, status=401)
                minutes = settings.SESSION_IDLE_TIMEOUT // 60
                messages.info(
                    request, f"You were signed out after {minutes} minutes of inactivity."
                )
                return redirect_to_login(request.get_full_path())
            if idle.counts_as_activity(request, now):
                idle.touch(request, now)
        return self.get_response(request)


# Allowed without MFA by a user whose role requires it but who has not enrolled yet, and to
# a user whose role requires a passkey but who has none (MFA_PHISHING_RESISTANT_ROLES).
ENROLMENT_PATHS = (
    "security",
    "mfa_enrol_start",
    "mfa_enrol_confirm",
    "reauth",  # adding a passkey asks who you are first
    "passkey_add",
    "otp_webauthn:credential-registration-begin",
    "otp_webauthn:credential-registration-complete",
    "otp_webauthn:credential-authentication-begin",
    "otp_webauthn:credential-authentication-complete",
    "otp_webauthn:js-i18n-catalog",
    "logout",
    "session_status",
    "session_keepalive",
    "healthz",
)
# The rest of the Security tab, for a user who has a second factor but no passkey yet.
SECURITY_TAB_PATHS = (
    *ENROLMENT_PATHS,
    "passkey_remove",
    "mfa_backup_codes",
    "session_end",
    "sessions_end_others",
)


def _view_name(request: HttpRequest) -> str | None:
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return None


class MfaRequiredMiddleware:
    """Roles that require MFA must enrol before anything else; enrolled users must be verified;
    roles that require a passkey must add one (after any grace period) before anything else.

    A session that signed in before the account's device existed cannot pass
    (enrolment also ends the account's other sessions): it must sign in again
    with a second factor.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return self.get_response(request)
        if user.is_verified():  # verified implies enrolled: no query for that
            policy = passkeys.passkey_policy(user, verified_device=user.otp_device)
            if policy.held and _view_name(request) not in SECURITY_TAB_PATHS:
                return redirect("security")
            return self.get_response(request)
        if mfa.mfa_enrolled(user):  # enrolled, but this session never gave a second factor
            auth_events.sign_out(request=request, reason=EndReason.REVOKED)
            return redirect_to_login(request.get_full_path())  # `next` encoded, query kept
        required = mfa.mfa_required(user) or passkeys.passkey_required(user)
        if required and _view_name(request) not in ENROLMENT_PATHS:
            return redirect("security")
        return self.get_response(request)


class TimeZoneMiddleware:
    """Show every date and time in the signed-in user's own time zone.

    Storage is UTC; with the user's zone active, `|date` in templates and
    `timezone.localtime` in code give the viewer's local time, and the `T`
    format its abbreviation (EST, PDT). Signed-out pages stay in UTC.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            timezone.activate(user.zone)  # UTC, said as such, for a zone the tz database dropped
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
