"""Account pages: sign-in, Account Settings, Staff Account Information, profile images."""

import time
from base64 import b32encode
from pathlib import PurePosixPath

import django_otp
import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import mfa, reauth, selectors, services, session_registry
from accounts.forms import (
    ChangePasswordForm,
    MfaCodeForm,
    MfaConfirmForm,
    MfaRemoveForm,
    ProviderProfileForm,
    ReauthForm,
    SignInForm,
    StaffAccountForm,
    StaffCreateForm,
)
from accounts.images import CONTENT_TYPES
from accounts.models import AuthenticatorDevice, User, UserSession
from accounts.roles import Role
from audit import kinds
from audit.services import audit_event_record
from audit.signals import IN_SESSION_PROMPT
from ehr import policies

PENDING_MFA = "pending_mfa"  # session key between the password and the code
PENDING_MFA_SECONDS = 300


class SignInView(auth_views.LoginView):
    """Password first; accounts with an authenticator then give a code before sign-in."""

    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if mfa.mfa_device(user) is None:
            return super().form_valid(form)
        # Not signed in yet: the session only remembers who passed the password step.
        self.request.session.cycle_key()
        self.request.session[PENDING_MFA] = {
            "user": user.pk,
            "backend": user.backend,
            "at": time.time(),
            "next": self.get_success_url(),
        }
        return redirect("login_mfa")


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def login_mfa(request: HttpRequest) -> HttpResponse:
    """The second sign-in step: a code from the authenticator app or a backup code."""
    pending = request.session.get(PENDING_MFA)
    if not pending or time.time() - pending["at"] > PENDING_MFA_SECONDS:
        request.session.pop(PENDING_MFA, None)
        messages.info(request, "Please sign in again.")
        return redirect("login")
    user = User.objects.get(pk=pending["user"])
    form = MfaCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            check = mfa.mfa_check(
                user=user,
                method=form.cleaned_data["method"],
                code=form.cleaned_data["code"],
                ip=request.client_ip,
            )
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
    return render(request, "registration/login_mfa.html", {"form": form}, status=status)


class SignOutView(auth_views.LogoutView):
    """Sign out (POST only, as Django requires since 5.0)."""


@login_required
@never_cache
@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    """Change the password with the current one; this session stays signed in."""
    form = ChangePasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.user_password_change(
            user=request.user, new_password=form.cleaned_data["new_password1"], ip=request.client_ip
        )
        old_key = request.session.session_key
        session_registry.sessions_end_all(
            user=request.user,
            acting_user=request.user,
            ip=request.client_ip,
            keep_key=old_key,
            reason=UserSession.EndReason.PASSWORD_CHANGED,
        )
        update_session_auth_hash(request, request.user)  # gives this session a new key
        session_registry.session_rekeyed(old_key=old_key, new_key=request.session.session_key)
        messages.success(
            request, "Your password has been changed. Your other sessions are signed out."
        )
        return redirect("home")
    return render(request, "accounts/password_change.html", {"form": form})


def locked_out(request: HttpRequest, credentials=None, *args) -> HttpResponse:
    """The page django-axes answers with once a sign-in is locked out (429)."""
    context = {"minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)}
    return render(request, "registration/locked_out.html", context, status=429)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to their own account page."""
    if policies.can_use_account_settings(request.user):
        return redirect("account_settings")
    if policies.can_use_staff_account(request.user):
        return redirect("staff_account")
    raise PermissionDenied


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    if not policies.can_use_account_settings(request.user):
        raise PermissionDenied
    profile = selectors.provider_profile_for_page(user=request.user)
    if request.method == "POST":
        form = ProviderProfileForm(request.POST, request.FILES, instance=profile, user=profile.user)
        if form.is_valid():
            services.provider_profile_update(
                profile=profile,
                acting_user=request.user,
                changes=form.changes(),
                ip=request.client_ip,
            )
            messages.success(request, "Your profile has been saved.")
            return redirect("account_settings")
        # The form copied the rejected values onto the instance; show the stored ones.
        profile = selectors.provider_profile_for_page(user=request.user)
    else:
        form = ProviderProfileForm(instance=profile, user=profile.user)
    return render(
        request,
        "accounts/account_settings.html",
        {"form": form, "profile": profile, "account": profile.user},
        status=400 if form.errors else 200,
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def staff_account(request: HttpRequest) -> HttpResponse:
    if not policies.can_use_staff_account(request.user):
        raise PermissionDenied
    user = request.user
    profile = user.staff_profile
    if request.method == "POST":
        form = StaffAccountForm(request.POST, user=user)
        if form.is_valid():
            services.staff_profile_update(
                user=user, acting_user=user, changes=form.cleaned_data, ip=request.client_ip
            )
            messages.success(request, "Staff account saved.")
            return redirect("staff_account")
    else:
        form = StaffAccountForm(
            user=user,
            initial={
                "email": user.email,
                "home_phone": profile.home_phone,
                "cell_phone": profile.cell_phone,
            },
        )
    return render(
        request,
        "accounts/staff_account.html",
        {"form": form, "account": user},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def profile_image(request: HttpRequest, user_id: int, kind: str) -> HttpResponse:
    """Serve a provider's picture or logo to the members of the provider's practice."""
    field = {"picture": "profile_picture", "logo": "business_logo"}.get(kind)
    if field is None:
        raise Http404
    profile = selectors.provider_profile_by_user_id(user_id=user_id)
    if not policies.can_view_profile_images(request.user, profile.user):
        raise Http404  # not 403: do not confirm that another practice's user exists
    image = getattr(profile, field)
    if not image:
        raise Http404
    extension = PurePosixPath(image.name).suffix.lstrip(".")
    try:
        handle = image.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, content_type=CONTENT_TYPES.get(extension, "image/png"))
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = "inline"
    return response


@login_required
@never_cache
@require_GET
def practice_staff(request: HttpRequest) -> HttpResponse:
    """The practice admin's list of the practice's accounts, with sign-in locks."""
    if not policies.can_manage_practice_staff(request.user):
        raise PermissionDenied
    rows = selectors.practice_staff(practice_id=request.user.practice_id)
    roles = [(role.value, role.label) for role in policies.ASSIGNABLE_ROLES]
    form = StaffCreateForm(roles=roles)
    context = {"rows": rows, "roles": roles, "form": form}
    return render(request, "accounts/practice_staff.html", context)


@login_required
@never_cache
@require_POST
@reauth.recent_auth_required
def practice_staff_create(request: HttpRequest) -> HttpResponse:
    """Add a staff member to the admin's practice; they choose a password from an email."""
    if not policies.can_manage_practice_staff(request.user):
        raise PermissionDenied
    roles = [(role.value, role.label) for role in policies.ASSIGNABLE_ROLES]
    form = StaffCreateForm(request.POST, roles=roles)
    if form.is_valid():

        def set_password_url(user: User) -> str:
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            token = default_token_generator.make_token(user)
            return request.build_absolute_uri(
                reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
            )

        user = services.staff_account_create(
            acting_user=request.user,
            ip=request.client_ip,
            set_password_url=set_password_url,
            **form.cleaned_data,
        )
        messages.success(request, f"{user.display_name} was added and emailed a link.")
        return redirect("practice_staff")
    rows = selectors.practice_staff(practice_id=request.user.practice_id)
    context = {"rows": rows, "roles": roles, "form": form}
    return render(request, "accounts/practice_staff.html", context, status=400)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The emailed link: a new account's first password (one use, expires)."""

    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit_event_record(
            kind=kinds.PASSWORD_CHANGED,
            acting_user=form.user,
            account=form.user,
            ip=self.request.client_ip,
        )
        messages.success(self.request, "Your password is set. Sign in with it.")
        return response


def _managed_member(request: HttpRequest, user_id: int) -> User:
    """The practice member a practice admin acts on; 404 for anyone else (not even whether
    another practice's account exists is confirmed)."""
    if not policies.can_manage_practice_staff(request.user):
        raise PermissionDenied
    account = User.objects.filter(pk=user_id, practice_id=request.user.practice_id).first()
    if account is None or not policies.can_manage_account(request.user, account):
        raise Http404
    return account


@login_required
@require_POST
def practice_staff_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    account = _managed_member(request, user_id)
    services.sign_in_unlock(account=account, acting_user=request.user, ip=request.client_ip)
    messages.success(request, f"Sign-in unlocked for {account.display_name}.")
    return redirect("practice_staff")


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def security(request: HttpRequest) -> HttpResponse:
    """Security tab: two-factor authentication (set up, confirm, remove)."""
    user = request.user
    action = request.POST.get("action") if request.method == "POST" else None
    if action is not None and not reauth.is_recent(request):
        return reauth.confirm_first(request)
    context = {"required": mfa.mfa_required(user), "device": mfa.mfa_device(user)}
    status = 200
    if action == "start" and context["device"] is None:
        mfa.mfa_enrollment_start(user=user)
    elif action == "confirm":
        form = MfaConfirmForm(request.POST)
        codes = None
        if form.is_valid():
            codes = mfa.mfa_enrollment_confirm(
                user=user, code=form.cleaned_data["code"], ip=request.client_ip
            )
            if codes is None:
                form.add_error("code", "That code is not right. Check the app and try again.")
        if codes is not None:
            django_otp.login(request, mfa.mfa_device(user))
            context.update(device=mfa.mfa_device(user), backup_codes=codes)
            response = render(request, "accounts/security.html", context)
            response["Cache-Control"] = "no-store"
            return response
        context["confirm_form"], status = form, 400
    elif action == "remove" and context["device"] is not None:
        form = MfaRemoveForm(request.POST)
        if form.is_valid():
            if not user.check_password(form.cleaned_data["password"]):
                form.add_error("password", "The password is not correct.")
            else:
                check = mfa.mfa_check(
                    user=user,
                    method=form.cleaned_data["method"],
                    code=form.cleaned_data["code"],
                    ip=request.client_ip,
                )
                if check.ok:
                    mfa.mfa_remove(user=user, ip=request.client_ip)
                    messages.success(request, "Two-factor authentication is off.")
                    return redirect("security")
                form.add_error("code", "That code is not right.")
        context["remove_form"], status = form, 400
    elif action == "end_session":
        raw = request.POST.get("session", "")
        session_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else None
        current = getattr(request, "user_session_id", None)
        if session_id not in (None, current) and session_registry.session_end(
            user=user, session_id=session_id, acting_user=user, ip=request.client_ip
        ):
            messages.success(request, "That session is signed out.")
        return redirect("security")
    elif action == "end_others":
        ended = session_registry.sessions_end_all(
            user=user, acting_user=user, ip=request.client_ip, keep_key=request.session.session_key
        )
        messages.success(request, f"Signed out {ended} other session(s).")
        return redirect("security")
    elif action is not None:
        return redirect("security")
    context["sessions"] = [
        {
            "id": row.pk,
            "browser": session_registry.browser_summary(row.user_agent),
            "ip": row.ip or "None",
            "last_seen": row.last_seen_at,
            "current": row.pk == getattr(request, "user_session_id", None),
        }
        for row in session_registry.active_sessions(user=user)
    ]
    pending = AuthenticatorDevice.objects.filter(user=user, confirmed=False).first()
    if pending is not None and context["device"] is None:
        secret = b32encode(pending.bin_key).decode()
        context.update(
            pending=True,
            qr_svg=mark_safe(segno.make(pending.config_url, error="m").svg_inline(scale=4)),  # noqa: S308  (segno's own SVG of our URL)  # nosec B308 B703
            secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            confirm_form=context.get("confirm_form") or MfaConfirmForm(),
        )
    context.setdefault("remove_form", MfaRemoveForm())
    return render(request, "accounts/security.html", context, status=status)


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def reauth_view(request: HttpRequest) -> HttpResponse:
    """Confirm the password (and the two-factor code where enrolled) before a sensitive action."""
    user = request.user
    device = mfa.mfa_device(user)
    next_url = reauth.safe_next(request, request.GET.get("next"), reverse("home"))
    password_form = ReauthForm(request.POST or None)
    code_form = MfaCodeForm(request.POST or None) if device else None
    status = 200
    if request.method == "POST":
        status = 400
        forms_valid = password_form.is_valid() and (code_form is None or code_form.is_valid())
        if forms_valid:
            if not user.check_password(password_form.cleaned_data["password"]):
                password_form.add_error("password", "The password is not correct.")
                audit_event_record(
                    kind=kinds.REAUTH_FAILED, acting_user=user, account=user, ip=request.client_ip
                )
                user_login_failed.send(
                    sender=__name__,
                    credentials={"username": user.get_username(), "purpose": IN_SESSION_PROMPT},
                    request=request,
                )
            elif (
                code_form is not None
                and not mfa.mfa_check(
                    user=user,
                    method=code_form.cleaned_data["method"],
                    code=code_form.cleaned_data["code"],
                    ip=request.client_ip,
                ).ok
            ):
                code_form.add_error("code", "That code is not right.")
            else:
                reauth.stamp(request)
                return redirect(next_url)
    context = {"password_form": password_form, "code_form": code_form, "next": next_url}
    return render(request, "accounts/reauth.html", context, status=status)


@login_required
@require_POST
@reauth.recent_auth_required
def practice_staff_sign_out(request: HttpRequest, user_id: int) -> HttpResponse:
    """Sign a staff member out of every session at once."""
    account = _managed_member(request, user_id)
    ended = session_registry.sessions_end_all(
        user=account, acting_user=request.user, ip=request.client_ip
    )
    messages.success(request, f"Signed {account.display_name} out of {ended} session(s).")
    return redirect("practice_staff")


@login_required
@require_POST
@reauth.recent_auth_required
def practice_staff_manage(request: HttpRequest, user_id: int) -> HttpResponse:
    """Deactivate, reactivate or change the role of a member of the admin's practice."""
    account = _managed_member(request, user_id)
    action = request.POST.get("action")
    if action in {"deactivate", "reactivate"}:
        services.user_set_active(
            account=account,
            active=action == "reactivate",
            acting_user=request.user,
            ip=request.client_ip,
        )
        messages.success(request, f"{account.display_name} was {action}d.")
    elif action == "role":
        role = request.POST.get("role", "")
        if role not in {r.value for r in policies.ASSIGNABLE_ROLES} or account.is_provider:
            messages.error(request, "Choose one of the staff roles.")
        else:
            services.user_role_change(
                account=account, role=role, acting_user=request.user, ip=request.client_ip
            )
            messages.success(request, f"{account.display_name} is now {Role(role).label}.")
    return redirect("practice_staff")
