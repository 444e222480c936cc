"""Passkeys and security keys: django-otp-webauthn's views, wrapped, and the Security tab's.

The library's four JSON views run the ceremonies for its script. The
subclasses here keep them to what this project allows, through the hooks
the library documents (`check_can_register`, `check_can_authenticate`,
`get_user`, `complete_auth`, `get_success_url`):

- Adding a passkey needs a name given on the Security tab and a confirmation
  of who you are within the re-authentication window.
- A passkey is checked for the user who passed the password step (sign-in) or
  who is signed in (a prompt), never for whoever a credential names; every
  check is recorded and a failed one counted (accounts/passkeys.py).
"""

import json
import time

from django.contrib import messages
from django.contrib.auth import login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django_otp import login as otp_login
from django_otp_webauthn import exceptions
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from accounts import passkeys, reauth
from accounts.auth_events import sessions_end_all
from accounts.forms import PasskeyNameForm
from accounts.views import security, sign_in


class ConfirmFirst(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = "Confirm it is you on the Security tab first, then add the passkey again."
    default_code = "confirm_first"


class Throttled(exceptions.OTPWebAuthnApiError):
    status_code = 429
    default_code = "throttled"


def passkey_enrolment(request: HttpRequest) -> dict | None:
    """Return the passkey this session is adding ({"name": ...}), while its confirmation holds."""
    enrolment = request.session.get(passkeys.ENROLMENT)
    if (
        not isinstance(enrolment, dict)
        or enrolment.get("user") != request.user.pk
        or not reauth.is_recent(request)
    ):
        return None
    return enrolment


class _Registration:
    def check_can_register(self):
        if passkey_enrolment(self.request) is None:
            raise ConfirmFirst()


class PasskeyRegistrationBegin(_Registration, BeginCredentialRegistrationView):
    """Options for the browser to create a passkey (after the Security tab's confirmation)."""


class PasskeyRegistrationComplete(_Registration, CompleteCredentialRegistrationView):
    """Store the new passkey (the library verifies it), name it and record it."""

    def post(self, *args, **kwargs):
        request = self.request
        enrolment = passkey_enrolment(request)
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            device = WebAuthnCredential.objects.get(
                pk=json.loads(response.content)["id"], user=request.user
            )
            first = passkeys.passkey_added(
                acting_user=request.user,
                device=device,
                name=enrolment["name"],
                ip=request.client_ip,
            )
            if first:  # the other sessions signed in without a second factor
                sessions_end_all(
                    account=request.user,
                    acting_user=request.user,
                    ip=request.client_ip,
                    keep_session_key=request.session.session_key,
                )
        request.session.pop(passkeys.ENROLMENT, None)
        if passkeys.passkey_required(request.user):
            # The ceremony just proved the authenticator is at hand (the library marks a
            # session with no factor yet alike): this session now stands on the passkey.
            otp_login(request, device)
        messages.success(request, f"Passkey “{enrolment['name']}” added.")
        return response


class _Authentication:
    """Whose passkey is asked for: the signed-in user, or the one past the password step."""

    def get_user(self):
        if self.request.user.is_authenticated:
            return self.request.user
        pending = sign_in.pending_sign_in(self.request)
        return pending[0] if pending else None

    def check_can_authenticate(self):
        super().check_can_authenticate()
        user = self.get_user()
        until = passkeys.passkey_throttled_until(user) if user else None
        if until is not None:
            wait = max(1, int((until - timezone.now()).total_seconds()))
            unit = "second" if wait == 1 else "seconds"
            raise Throttled(
                detail=f"Too many failed attempts with a passkey. Try again in {wait} {unit}."
            )


class PasskeyAuthenticationBegin(_Authentication, BeginCredentialAuthenticationView):
    """Options for the browser to use one of the user's passkeys."""


class PasskeyAuthenticationComplete(_Authentication, CompleteCredentialAuthenticationView):
    """Check a passkey's answer; sign in, or confirm a prompt inside the session.

    A failure of any kind (a wrong origin, a removed or another user's
    credential, a replayed or missing challenge) is recorded and counted.
    """

    _next = ""

    def post(self, *args, **kwargs):
        user = self.get_user()
        try:
            with transaction.atomic():
                return super().post(*args, **kwargs)
        except exceptions.OTPWebAuthnApiError:
            if user is not None:
                passkeys.passkey_failed(acting_user=user, ip=self.request.client_ip)
            raise

    def complete_auth(self, device) -> None:
        request = self.request
        passkeys.passkey_used(acting_user=device.user, ip=request.client_ip)
        if request.user.is_authenticated:
            # A prompt: the password comes next, on the same page. A session that signed
            # in with another factor now stands on the passkey too (it was just used).
            passkeys.passkey_proof_keep(request)
            if not isinstance(request.user.otp_device, WebAuthnCredential):
                otp_login(request, device)
            return
        user, pending = sign_in.pending_sign_in(request)
        del request.session[sign_in.PENDING_MFA]
        user.backend = pending["backend"]
        user.otp_device = device  # django-otp marks the session verified
        login(request, user)
        self._next = pending["next"]

    def get_success_url(self) -> str:
        return self._next


# The Security tab's actions


@security.security_action
def passkey_add(request: HttpRequest) -> HttpResponse:
    """Name the passkey to add; the page then asks the browser to create it.

    The name is checked before the password is asked for (`recent_auth_required`'s
    check, made here after the form's): a blank name was refused only after it.
    """
    form = PasskeyNameForm(request.POST)
    if not form.is_valid():
        return security.render_page(request, 400, passkey_form=form)
    if not reauth.is_recent(request):
        return reauth.confirm_first(request, label="add a passkey or security key")
    request.session[passkeys.ENROLMENT] = {
        "user": request.user.pk,
        "name": form.cleaned_data["name"],
        "at": time.time(),
    }
    return redirect("security")


@security.security_action
@reauth.recent_auth_required(label="remove a passkey or security key")
def passkey_remove(request: HttpRequest, passkey_id: int) -> HttpResponse:
    """Remove one of the user's own passkeys."""
    if not passkeys.passkey_remove(
        acting_user=request.user, passkey_id=passkey_id, ip=request.client_ip
    ):
        raise Http404
    messages.success(request, "The passkey is removed: it no longer signs you in.")
    return redirect("security")
