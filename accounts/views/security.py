"""The Security tab: two-factor authentication and the account's sessions.

One URL and one small view per action. Every action that changes how the
account signs in, shows backup codes or ends other sessions asks for the
password (and the code, where enrolled) at that moment.
"""

from base64 import b32encode

import django_otp
import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts import auth_events, mfa, passkeys, reauth, selectors
from accounts.auth_events import PromptPurpose
from accounts.forms import IdentityForm, MfaConfirmForm, PasskeyNameForm
from accounts.models import AuthenticatorDevice
from accounts.session_store import stored_key
from accounts.views.prompts import identity_confirmed


def security_action(view):
    """A Security tab action: signed in, POST only, never cached, secrets kept out of reports."""
    view = sensitive_post_parameters("password", "code")(require_POST(view))
    return login_required(never_cache(view))


def render_page(request: HttpRequest, status: int = 200, **context) -> HttpResponse:
    """Render the Security tab, with any form the action handed back for its errors."""
    from accounts.views.passkeys import passkey_enrolment

    user = request.user
    device = mfa.mfa_device(user)
    adding = passkey_enrolment(request)
    # While a passkey is being added, the page's passkey script is the one that creates it.
    context.setdefault(
        "identity_form", IdentityForm(user=user, auto_id="mfa_%s" if adding else "id_%s")
    )
    context.setdefault("sessions_form", IdentityForm(user=user, auto_id="session_%s"))
    context.setdefault("passkey_form", PasskeyNameForm(auto_id="passkey_%s"))
    keys = passkeys.passkey_list(user)
    context.update(
        required=mfa.mfa_required(user),
        device=device,
        passkeys=keys,
        enrolled=device is not None or bool(keys),
        backup_codes_missing=bool(keys) and not mfa.backup_codes_exist(user),
        passkey_policy=passkeys.passkey_policy(user, verified_device=user.otp_device),
        adding_passkey=adding,
        sessions=selectors.active_sessions(
            account=user, current_key=stored_key(request.session.session_key)
        ),
    )
    pending = None if device else _enrolling(request)
    if pending is not None:
        secret = b32encode(pending.bin_key).decode()
        qr = segno.make(pending.config_url, error="m").svg_inline(scale=4)
        context.update(
            pending=True,
            qr_svg=mark_safe(qr),  # noqa: S308  (segno's own SVG of our URL)  # nosec B308 B703
            secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        )
        context.setdefault("confirm_form", MfaConfirmForm())
    response = render(request, "accounts/security.html", context, status=status)
    if "backup_codes" in context:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@never_cache
@require_GET
def security(request: HttpRequest) -> HttpResponse:
    return render_page(request)


def _confirmed(
    request: HttpRequest, purpose: PromptPurpose, auto_id: str = "id_%s"
) -> tuple[bool, IdentityForm]:
    form = IdentityForm(request.POST, user=request.user, auto_id=auto_id)
    return form.is_valid() and identity_confirmed(request, form, purpose=purpose), form


ENROLMENT = "mfa_enrolment"  # session key: the authenticator this session is setting up


def _enrolling(request: HttpRequest) -> AuthenticatorDevice | None:
    """Return the authenticator this session began setting up, while that confirmation is
    recent.

    Its secret is shown, and a code from it accepted, only then: a session
    that did not just give the password cannot take over the second factor.
    """
    pending = mfa.mfa_pending_device(request.user)
    if pending is None or request.session.get(ENROLMENT) != pending.pk:
        return None
    return pending if reauth.is_recent(request) else None


@security_action
def mfa_enrol_start(request: HttpRequest) -> HttpResponse:
    """Begin setting up an authenticator app (the QR code is shown next)."""
    ok, form = _confirmed(request, PromptPurpose.MFA_CHANGE)
    if not ok:
        return render_page(request, form.http_status, identity_form=form)
    device = mfa.mfa_enrollment_start(acting_user=request.user)
    request.session[ENROLMENT] = device.pk
    return redirect("security")


@security_action
@reauth.recent_auth_required(label="show the authenticator app's key again to turn it on")
def mfa_enrol_confirm(request: HttpRequest) -> HttpResponse:
    """Turn two-factor on with a code from the new app; show the backup codes once.

    The code is never kept across a confirmation (it is a secret, and short-lived):
    after one the page shows the same key again and asks for a fresh code.
    """
    pending = _enrolling(request)
    if pending is None:
        messages.info(request, "Set up the authenticator app again.")
        return redirect("security")
    form = MfaConfirmForm(request.POST)
    codes = None
    if form.is_valid():
        codes = mfa.mfa_enrollment_confirm(
            acting_user=request.user,
            device_id=pending.pk,
            code=form.cleaned_data["code"],
            ip=request.client_ip,
            keep_session_key=request.session.session_key,
        )
        if codes is None:
            form.add_error("code", "That code is not right. Check the app and try again.")
    if codes is None:
        return render_page(request, 400, confirm_form=form)
    del request.session[ENROLMENT]
    django_otp.login(request, mfa.mfa_device(request.user))
    return render_page(request, backup_codes=codes)


@security_action
def mfa_backup_codes(request: HttpRequest) -> HttpResponse:
    """Replace the backup codes and show the new ones once."""
    ok, form = _confirmed(request, PromptPurpose.MFA_CHANGE)
    if not ok or not mfa.mfa_enrolled(request.user):
        return render_page(request, form.http_status, identity_form=form)
    codes = mfa.mfa_backup_codes_replace(acting_user=request.user, ip=request.client_ip)
    return render_page(request, backup_codes=codes)


@security_action
def mfa_remove(request: HttpRequest) -> HttpResponse:
    """Turn two-factor authentication off (not for roles that require it)."""
    if mfa.mfa_required(request.user):
        raise Http404
    ok, form = _confirmed(request, PromptPurpose.MFA_CHANGE)
    if not ok:
        return render_page(request, form.http_status, identity_form=form)
    mfa.mfa_remove(acting_user=request.user, ip=request.client_ip)
    messages.success(request, "Two-factor authentication is off.")
    return redirect("security")


@security_action
def session_end(request: HttpRequest, session_id: str) -> HttpResponse:
    """Sign out one of the user's other sessions."""
    ok, form = _confirmed(request, PromptPurpose.SESSIONS_END, auto_id="session_%s")
    if not ok:
        return render_page(request, form.http_status, sessions_form=form)
    mine = stored_key(request.session.session_key)
    if session_id != mine and auth_events.session_end(
        account=request.user, session_key=session_id, acting_user=request.user, ip=request.client_ip
    ):
        messages.success(request, "That session is signed out.")
    return redirect("security")


@security_action
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    """Sign out every session of the user but this one."""
    ok, form = _confirmed(request, PromptPurpose.SESSIONS_END, auto_id="session_%s")
    if not ok:
        return render_page(request, form.http_status, sessions_form=form)
    ended = auth_events.sessions_end_all(
        account=request.user,
        acting_user=request.user,
        ip=request.client_ip,
        keep_session_key=request.session.session_key,
    )
    messages.success(
        request,
        ngettext("Signed out %(n)d other session.", "Signed out %(n)d other sessions.", ended)
        % {"n": ended},
    )
    return redirect("security")
