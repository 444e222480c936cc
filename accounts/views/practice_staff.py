"""The practice admin's page of the practice's accounts: add, unlock, sign out, manage."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import auth_events, reauth, selectors, services
from accounts.forms import StaffCreateForm
from accounts.models import User
from accounts.roles import Role
from accounts.tokens import invitation_token_generator
from ehr import policies
from ehr.links import absolute_url
from support_pin.services import support_pin_validation_unblock


def _roles() -> list[tuple[str, str]]:
    return [(role.value, role.label) for role in policies.ASSIGNABLE_ROLES]


def _page(request: HttpRequest, form: StaffCreateForm, status: int = 200) -> HttpResponse:
    rows = selectors.practice_staff(practice_id=request.user.practice_id)
    context = {"rows": rows, "roles": _roles(), "form": form}
    return render(request, "accounts/practice_staff.html", context, status=status)


def staff_action(label: str):
    """A practice admin's change to a member: signed in, POST only, allowed, recently confirmed
    (`label` says on the confirmation prompt what happens once confirmed)."""

    def decorator(view):
        view = reauth.recent_auth_required(view, label=label)
        view = policies.allowed_only(policies.can_manage_practice_staff)(view)
        return login_required(require_POST(view))

    return decorator


def _managed_member(request: HttpRequest, user_id: int) -> User:
    """Return the practice member a practice admin acts on; 404 for anyone else (not even
    whether another practice's account exists is confirmed)."""
    account = User.objects.filter(pk=user_id, practice_id=request.user.practice_id).first()
    if account is None or not policies.can_manage_account(request.user, account):
        raise Http404
    return account


@login_required
@never_cache
@require_GET
@policies.allowed_only(policies.can_manage_practice_staff)
def practice_staff(request: HttpRequest) -> HttpResponse:
    """The practice's accounts, with their roles and sign-in locks."""
    return _page(request, StaffCreateForm(roles=_roles()))


@login_required
@never_cache
@require_POST
@policies.allowed_only(policies.can_manage_practice_staff)
def practice_staff_create(request: HttpRequest) -> HttpResponse:
    """Add a staff member to the admin's practice; they choose a password from an email."""
    form = StaffCreateForm(request.POST, roles=_roles())
    if not form.is_valid():
        return _page(request, form, 400)
    # Asked once the form is complete, so a missing or malformed field is said first.
    asked = reauth.confirm_unless_recent(request, label="add the staff member")
    if asked is not None:
        return asked

    def set_password_url(user: User) -> str:
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = invitation_token_generator.make_token(user)
        path = reverse("invitation_set_password", kwargs={"uidb64": uid, "token": token})
        return absolute_url(request, path)

    try:
        user = services.staff_account_create(
            acting_user=request.user,
            ip=request.client_ip,
            set_password_url=set_password_url,
            **form.cleaned_data,
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _page(request, form, 400)
    messages.success(request, f"{user.display_name} was added and emailed a link.")
    return redirect("practice_staff")


@staff_action("unlock the member's sign-in")
def practice_staff_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    """Clear a member's sign-in lock (each unlock gives a guesser five more tries: confirmed)."""
    account = _managed_member(request, user_id)
    services.sign_in_unlock(account=account, acting_user=request.user, ip=request.client_ip)
    messages.success(request, f"Sign-in unlocked for {account.display_name}.")
    return redirect("practice_staff")


@staff_action("sign the member out everywhere")
def practice_staff_sign_out(request: HttpRequest, user_id: int) -> HttpResponse:
    """Sign a staff member out of every session at once."""
    account = _managed_member(request, user_id)
    ended = auth_events.sessions_end_all(
        account=account, acting_user=request.user, ip=request.client_ip
    )
    sessions = ngettext("%(n)d session", "%(n)d sessions", ended) % {"n": ended}
    messages.success(request, f"Signed {account.display_name} out of {sessions}.")
    return redirect("practice_staff")


@staff_action("unblock the member's Support PIN validation")
def practice_staff_unblock_pin(request: HttpRequest, user_id: int) -> HttpResponse:
    """Let support validate a member's Support PIN again after repeated locks."""
    account = _managed_member(request, user_id)
    support_pin_validation_unblock(acting_user=request.user, account=account, ip=request.client_ip)
    messages.success(request, f"Support PIN validation unblocked for {account.display_name}.")
    return redirect("practice_staff")


def _set_active(request: HttpRequest, user_id: int, *, active: bool) -> HttpResponse:
    account = _managed_member(request, user_id)
    services.user_set_active(
        account=account, active=active, acting_user=request.user, ip=request.client_ip
    )
    done = "reactivated" if active else "deactivated"
    messages.success(request, f"{account.display_name} was {done}.")
    return redirect("practice_staff")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
@policies.allowed_only(policies.can_manage_practice_staff)
@reauth.recent_auth_required(label="deactivate the member")
def practice_staff_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    """Deactivate a member once the admin confirms on this page: every session of theirs
    ends at once. A POST without the page's confirmation only shows the page."""
    account = _managed_member(request, user_id)
    if request.method == "POST" and request.POST.get("confirm") == "deactivate":
        return _set_active(request, user_id, active=False)
    if not account.is_active:
        messages.info(request, f"{account.display_name} is already deactivated.")
        return redirect("practice_staff")
    return render(request, "accounts/practice_staff_deactivate.html", {"account": account})


@staff_action("reactivate the member")
def practice_staff_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _set_active(request, user_id, active=True)


@staff_action("change the member's role")
def practice_staff_role(request: HttpRequest, user_id: int) -> HttpResponse:
    """Give a staff member another of the practice's staff roles."""
    account = _managed_member(request, user_id)
    role = request.POST.get("role", "")
    if role not in {r.value for r in policies.ASSIGNABLE_ROLES} or account.is_provider:
        messages.error(request, "Choose one of the staff roles.")
    else:
        services.user_role_change(
            account=account, role=role, acting_user=request.user, ip=request.client_ip
        )
        messages.success(request, f"{account.display_name} is now {Role(role).label}.")
    return redirect("practice_staff")
