"""Account pages: sign-in, Account Settings, Staff Account Information, profile images."""

from pathlib import PurePosixPath

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import policies, selectors, services
from accounts.forms import ChangePasswordForm, ProviderProfileForm, SignInForm, StaffAccountForm
from accounts.images import CONTENT_TYPES
from accounts.models import User


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


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
        update_session_auth_hash(request, request.user)
        messages.success(request, "Your password has been changed.")
        return redirect("home")
    return render(request, "accounts/password_change.html", {"form": form})


def locked_out(request: HttpRequest, credentials=None, *args) -> HttpResponse:
    """The page django-axes answers with once a sign-in is locked out (429)."""
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
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
    return render(request, "accounts/practice_staff.html", {"rows": rows})


@login_required
@require_POST
def practice_staff_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    if not policies.can_manage_practice_staff(request.user):
        raise PermissionDenied
    account = User.objects.filter(pk=user_id, practice_id=request.user.practice_id).first()
    if account is None or not policies.can_unlock_sign_in(request.user, account):
        raise Http404  # another practice's account: not even its existence is confirmed
    services.sign_in_unlock(account=account, acting_user=request.user, ip=request.client_ip)
    messages.success(request, f"Sign-in unlocked for {account.display_name}.")
    return redirect("practice_staff")
