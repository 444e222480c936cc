"""PIN screens: the owner's View / Generate / View-Edit, and the support console."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.auth_events import PromptPurpose
from accounts.reauth import recent_auth_required
from accounts.views.prompts import identity_confirmed
from ehr import policies
from support_pin import selectors, services
from support_pin.forms import AppPinForm, ConsoleSearchForm, ConsoleValidateForm, PasswordPromptForm
from support_pin.services import ValidationOutcome


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%I:%M %p %Z")


def _prompt(request: HttpRequest, form, *, action: str, title: str, show) -> HttpResponse:
    """The password prompt; once it confirms who the user is, `show(cleaned_data)` returns
    (pin, note) for the page that shows the PIN."""
    if (
        request.method == "POST"
        and form.is_valid()
        and identity_confirmed(request, form, purpose=PromptPurpose.PIN_VIEW)
    ):
        pin, note = show(form.cleaned_data)
        response = render(
            request, "support_pin/pin_shown.html", {"title": title, "pin": pin, "note": note}
        )
        response["Cache-Control"] = "no-store"  # never_cache adds the rest; this page holds a PIN
        return response
    context = {"form": form, "action": action, "title": title}
    return render(request, "support_pin/password_prompt.html", context, status=form.http_status)


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
@policies.allowed_only(policies.can_manage_own_pins)
def support_pin_view(request: HttpRequest) -> HttpResponse:
    """The "Enter Your Password" prompt; the right password shows the Support PIN."""

    def show(data):
        pin = services.support_pin_reveal(acting_user=request.user, ip=request.client_ip)
        return pin, (
            "Give this PIN to support when they ask for it. "
            "It changes after every successful validation."
        )

    form = PasswordPromptForm(request.POST or None, user=request.user)
    return _prompt(request, form, action="support_pin_view", title="Support PIN", show=show)


@login_required
@require_POST
@policies.allowed_only(policies.can_manage_own_pins)
@recent_auth_required
def support_pin_generate(request: HttpRequest) -> HttpResponse:
    services.support_pin_generate(
        account=request.user, acting_user=request.user, ip=request.client_ip
    )
    messages.success(request, "A new Support PIN was generated. Use View to see it.")
    return redirect("home")


@login_required
@never_cache
@sensitive_post_parameters("password", "code", "new_app_pin")
@require_http_methods(["GET", "POST"])
@policies.allowed_only(policies.can_manage_own_pins)
def app_pin_view_edit(request: HttpRequest) -> HttpResponse:
    """View/Edit of the App Unlock PIN, behind the same password prompt."""

    def show(data):
        common = {"acting_user": request.user, "ip": request.client_ip}
        if data["new_app_pin"]:
            pin = services.app_pin_change(new_app_pin=data["new_app_pin"], **common)
            changed = "Your App Unlock PIN was changed. "
        else:
            pin, changed = services.app_pin_reveal(**common), ""
        return pin, changed + (
            "It unlocks the mobile app after inactivity. It is not your Support PIN."
        )

    form = AppPinForm(request.POST or None, user=request.user)
    return _prompt(request, form, action="app_pin_view_edit", title="App Unlock PIN", show=show)


def _console(request: HttpRequest, *, account, form, outcome=None, status=200) -> HttpResponse:
    """The console page: the search, the chosen account, its lock, the last outcome."""
    search = ConsoleSearchForm(request.GET if "q" in request.GET else None)
    results = (
        selectors.console_account_search(query=search.cleaned_data["q"])
        if search.is_bound and search.is_valid()
        else None
    )
    if outcome is not None:  # the service just read the state
        lock = outcome.locked_until
    else:
        lock = selectors.validation_locked_until(account=account) if account else None
    locked_until = None
    if lock and lock > timezone.now():
        with timezone.override(request.user.time_zone):
            locked_until = _local(lock)
    context = {
        "search": search,
        "results": results,
        "account": account,
        "form": form,
        "outcome": outcome.outcome.value if outcome else None,
        "locked_until": locked_until,
        "can_open_break_glass": account is not None
        and policies.can_open_break_glass(request.user, account),
        "Outcome": ValidationOutcome,
    }
    return render(request, "support_pin/console.html", context, status=status)


@login_required
@never_cache
@require_GET
@policies.allowed_only(policies.can_use_support_console)
def support_console(request: HttpRequest) -> HttpResponse:
    """Find an account and choose it; no PIN is ever shown here."""
    account = _account_from(request.GET.get("account", ""))
    form = ConsoleValidateForm(initial={"account": account.pk if account else None})
    return _console(request, account=account, form=form)


@login_required
@never_cache
@require_POST
@policies.allowed_only(policies.can_use_support_console)
def support_console_validate(request: HttpRequest) -> HttpResponse:
    """Type the caller's PIN for the chosen account; see matched or not."""
    form = ConsoleValidateForm(request.POST)
    if not form.is_valid():
        account = _account_from(request.POST.get("account", ""))
        return _console(request, account=account, form=_rebound_without_pin(form), status=400)
    account = selectors.console_account(account_id=form.cleaned_data["account"])
    if account is None:
        form.add_error(None, "That account cannot be validated.")
        return _console(request, account=None, form=_rebound_without_pin(form), status=400)
    outcome = services.support_pin_validate(
        acting_user=request.user,
        account=account,
        pin=form.cleaned_data["pin"],
        ip=request.client_ip,
    )
    # A fresh form: the PIN typed is never echoed back into the page.
    fresh = ConsoleValidateForm(initial={"account": account.pk})
    return _console(request, account=account, form=fresh, outcome=outcome)


def _account_from(raw: str):
    """The account a console request names, or None for a missing or malformed id."""
    if raw.isascii() and raw.isdigit() and len(raw) < 12:
        return selectors.console_account(account_id=int(raw))
    return None


def _rebound_without_pin(form: ConsoleValidateForm) -> ConsoleValidateForm:
    """The invalid form, for its errors, but never with the PIN text in it."""
    form.data = form.data.copy()
    form.data["pin"] = ""
    return form
