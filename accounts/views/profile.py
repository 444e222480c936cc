"""The user's own pages: Account Settings (providers), Staff Account Information, password."""

from pathlib import PurePosixPath

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from accounts import lockout, selectors, services
from accounts.auth_events import PromptPurpose
from accounts.forms import (
    ChangePasswordForm,
    ContactConfirmForm,
    ProviderProfileForm,
    StaffAccountForm,
)
from accounts.images import CONTENT_TYPES, IMAGE_FIELDS, image_version
from accounts.views.prompts import identity_confirmed
from ehr import policies
from support_pin.forms import pin_prompt_forms


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send a support agent to the console, everyone else to their own account page."""
    if policies.can_use_support_console(request.user):
        return redirect("support_console")
    if policies.can_use_account_settings(request.user):
        return redirect("account_settings")
    if policies.can_use_staff_account(request.user):
        return redirect("staff_account")
    raise PermissionDenied


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    """Account Settings' Profile tab; a new phone number needs the password (and code) too."""
    if not policies.can_use_account_settings(request.user):
        raise PermissionDenied
    profile = selectors.provider_profile_for_page(user=request.user)
    form = ProviderProfileForm(
        request.POST or None, request.FILES or None, instance=profile, user=profile.user
    )
    identity = ContactConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST":
        confirmed = form.is_valid() and identity.is_valid()
        if confirmed and form.phones_changed:
            identity.require_identity(identity.cleaned_data)
            confirmed = not identity.errors and identity_confirmed(
                request, identity, purpose=PromptPurpose.PHONE_CHANGE
            )
            if not confirmed and request.FILES:
                identity.add_error(
                    None, "Choose the picture or logo again: a page sent back keeps no file."
                )
        if confirmed:
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
    context = {
        "form": form,
        "identity": identity,
        "profile": profile,
        "account": profile.user,
        "image_urls": selectors.profile_image_urls(profile=profile),
        **pin_prompt_forms(request.user),
        "prompt_lock": lockout.prompt_lock_message(request),
    }
    status = identity.http_status if identity.errors else 400 if form.errors else 200
    return render(request, "accounts/account_settings.html", context, status=status)


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def staff_account(request: HttpRequest) -> HttpResponse:
    """Staff Account Information; a new email address or phone number needs the password
    (and code) too."""
    if not policies.can_use_staff_account(request.user):
        raise PermissionDenied
    user = request.user
    profile = user.staff_profile
    initial = {
        "email": user.email,
        "home_phone": profile.home_phone,
        "cell_phone": profile.cell_phone,
        "time_zone": user.time_zone,
    }
    form = StaffAccountForm(request.POST or None, user=user, initial=initial)
    if request.method == "POST" and form.is_valid():
        purpose = PromptPurpose.EMAIL_CHANGE if form.email_changed else PromptPurpose.PHONE_CHANGE
        confirmed = not form.contact_changed or identity_confirmed(request, form, purpose=purpose)
        if confirmed:
            try:
                services.staff_profile_update(
                    account=user, acting_user=user, changes=form.changes(), ip=request.client_ip
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, "Staff account saved.")
                return redirect("staff_account")
    context = {
        "form": form,
        "account": user,
        **pin_prompt_forms(user),
        "prompt_lock": lockout.prompt_lock_message(request),
    }
    return render(request, "accounts/staff_account.html", context, status=form.http_status)


@login_required
@never_cache
@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    """Change the password with the current one; the other sessions are signed out."""
    form = ChangePasswordForm(request.POST or None, user=request.user)
    confirmed = (
        request.method == "POST"
        and form.is_valid()
        and identity_confirmed(request, form, purpose=PromptPurpose.PASSWORD_CHANGE)
    )
    if confirmed:
        services.user_password_change(
            account=request.user,
            acting_user=request.user,
            new_password=form.cleaned_data["new_password1"],
            ip=request.client_ip,
            keep_session_key=request.session.session_key,
        )
        update_session_auth_hash(request, request.user)  # a new key for this session
        messages.success(
            request, "Your password has been changed. Your other sessions are signed out."
        )
        return redirect("home")
    context = {"form": form}
    return render(request, "accounts/password_change.html", context, status=form.http_status)


@login_required
@require_GET
def profile_image(request: HttpRequest, user_id: int, kind: str, version: str) -> HttpResponse:
    """Serve a provider's picture or logo to the members of the provider's practice.

    The URL names one stored image: once it is replaced or removed, the old URL
    answers 404 and never the new image.
    """
    field = IMAGE_FIELDS.get(kind)
    if field is None:
        raise Http404
    profile = selectors.provider_profile_by_user_id(user_id=user_id)
    if not policies.can_view_profile_images(request.user, profile.user):
        raise Http404  # not 403: do not confirm that another practice's user exists
    image = getattr(profile, field)
    if not image or version != image_version(image.name):
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
