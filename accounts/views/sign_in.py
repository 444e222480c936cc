"""Sign-in (password, then the second factor), sign-out, re-authentication."""

import time

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import lockout, mfa, passkeys, reauth
from accounts.auth_events import PromptPurpose
from accounts.forms import IdentityForm, MfaCodeForm, SignInForm
from accounts.models import User
from accounts.views.prompts import identity_confirmed

PENDING_MFA = "pending_mfa"  # session key between the password and the code
PENDING_MFA_SECONDS = 300


class SignInView(auth_views.LoginView):
    """Password first; accounts with an authenticator then give a code before sign-in."""

    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if not mfa.mfa_enrolled(user):
            return super().form_valid(form)
        # Not signed in yet: the session only remembers who passed the password step.
        self.request.session.cycle_key()
        self.request.session[PENDING_MFA] = {
            "user": user.pk,
            # The password it passed, as a session carries it: changed or reset meanwhile,
            # the step is void (Django ends signed-in sessions the same way).
            "auth": user.get_session_auth_hash(),
            "backend": user.backend,
            "at": time.time(),
            "next": self.get_success_url(),
        }
        return redirect("login_mfa")


def pending_sign_in(request: HttpRequest) -> tuple[User, dict] | None:
    """Return who passed the password step in this session (and where to go), if in time."""
    pending = request.session.get(PENDING_MFA)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_MFA_SECONDS:
        return None
    user = User.objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None or not constant_time_compare(
        str(pending.get("auth", "")), user.get_session_auth_hash()
    ):
        return None
    return user, pending


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def login_mfa(request: HttpRequest) -> HttpResponse:
    """The second sign-in step: the user's passkey first where they have one, else a code
    from the authenticator app, or a backup code."""
    found = pending_sign_in(request)
    if found is None:
        request.session.pop(PENDING_MFA, None)
        messages.info(request, "Please sign in again.")
        return redirect("login")
    user, pending = found
    form = MfaCodeForm(request.POST or None)
    if mfa.mfa_device(user) is None:  # passkeys only: a backup code is the other way in
        form.fields["method"].choices = [("backup", "Backup code")]
        form.fields["method"].initial = "backup"
    context = {"form": form, "passkey": passkeys.has_passkey(user)}
    if request.method != "POST":
        return render(request, "registration/login_mfa.html", context)
    status = 400
    if form.is_valid():
        check = mfa.mfa_check(acting_user=user, ip=request.client_ip, **form.cleaned_data)
        if check.ok:
            del request.session[PENDING_MFA]
            user.backend = pending["backend"]
            user.otp_device = check.device  # django-otp marks the session verified
            login(request, user)
            return redirect(pending["next"])
        if check.throttled_until:
            wait = max(1, int((check.throttled_until - timezone.now()).total_seconds()))
            unit = "second" if wait == 1 else "seconds"
            form.add_error("code", f"Too many wrong codes. Try again in {wait} {unit}.")
            status = 429
        else:
            form.add_error("code", "That code is not right.")
    return render(request, "registration/login_mfa.html", context, status=status)


class SignOutView(auth_views.LogoutView):
    """Sign out (POST only, as Django requires since 5.0)."""


def locked_out(request: HttpRequest, credentials=None, *args) -> HttpResponse:
    """The page django-axes answers with once a sign-in is locked out (429).

    Said in the words every prompt uses (accounts/lockout.py, `lock_message`),
    naming no account: the visitor is not signed in.
    """
    context = {"message": lockout.lock_message(account=None, until=None)}
    return render(request, "registration/locked_out.html", context, status=429)


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def reauth_view(request: HttpRequest) -> HttpResponse:
    """Confirm the password (and the second factor where enrolled) before a sensitive action.

    `action` names the pending action the prompt is for (accounts/reauth.py):
    once confirmed it happens, once. Without one, `next` is where to go after.
    """
    action_id = request.GET.get("action")
    action = reauth.pending_action_get(request, action_id)
    next_url = reauth.safe_next(request, request.GET.get("next"), reverse("home"))
    form = IdentityForm(request.POST or None, user=request.user)
    if (
        request.method == "POST"
        and form.is_valid()
        and identity_confirmed(request, form, purpose=PromptPurpose.REAUTH)
    ):
        taken = reauth.pending_action_take(request, action_id)
        if taken is not None:
            return reauth.pending_action_run(request, taken)
        if action_id:
            messages.info(
                request, "You are confirmed, but that action was not kept: please do it again."
            )
        return redirect(next_url)
    if action_id and action is None and request.method == "GET":
        messages.info(request, "That action was not kept: confirm it is you, then do it again.")
    context = {
        "form": form,
        "action": action,
        "back": (action.back if action else None) or reverse("home"),
        # A lock is explained before the password is typed; after a refusal the error says it.
        "lock": lockout.prompt_lock_message(request) if request.method == "GET" else None,
    }
    return render(request, "accounts/reauth.html", context, status=form.http_status)
