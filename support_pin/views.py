"""PIN screens: the owner's View / Generate / View-Edit, and the support console."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.reauth import recent_auth_required
from audit.signals import IN_SESSION_PROMPT
from ehr import policies
from support_pin import selectors, services
from support_pin.forms import AppPinForm, ConsoleSearchForm, ConsoleValidateForm, PasswordPromptForm
from support_pin.services import RevealOutcome, ValidationOutcome


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%I:%M %p %Z")


def _refusal(result: services.RevealResult, request: HttpRequest) -> tuple[str, int]:
    if result.outcome is RevealOutcome.LOCKED:
        with timezone.override(request.user.time_zone):
            until = _local(result.locked_until)
        return f"Too many wrong passwords. Viewing PINs is locked until {until}.", 429
    return "The password is not correct.", 400


def _require_own_pins(request: HttpRequest) -> None:
    if not policies.can_manage_own_pins(request.user):
        raise PermissionDenied


def _pin_page(request: HttpRequest, *, title: str, pin: str, note: str) -> HttpResponse:
    response = render(
        request, "support_pin/pin_shown.html", {"title": title, "pin": pin, "note": note}
    )
    response["Cache-Control"] = "no-store"  # never_cache adds the rest; this page holds a PIN
    return response


def _prompt(request: HttpRequest, form, *, action: str, title: str, run) -> HttpResponse:
    """The password prompt: on a valid POST `run(cleaned_data)` returns (result, note)."""
    status = 200
    if request.method == "POST" and form.is_valid():
        result, note = run(form.cleaned_data)
        if result.password_was_wrong:
            # A wrong password here counts towards the sign-in lockout too.
            user_login_failed.send(
                sender=__name__,
                credentials={"username": request.user.get_username(), "purpose": IN_SESSION_PROMPT},
                request=request,
            )
        if result.ok:
            return _pin_page(request, title=title, pin=result.pin, note=note)
        message, status = _refusal(result, request)
        form.add_error("password", message)
    elif request.method == "POST":
        status = 400
    context = {"form": form, "action": action, "title": title}
    return render(request, "support_pin/password_prompt.html", context, status=status)


@login_required
@never_cache
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
@recent_auth_required
def support_pin_view(request: HttpRequest) -> HttpResponse:
    """The seed's "Enter Your Password" prompt; the right password shows the Support PIN."""
    _require_own_pins(request)

    def run(data):
        result = services.support_pin_reveal(
            acting_user=request.user, password=data["password"], ip=request.client_ip
        )
        return result, (
            "Give this PIN to support when they ask for it. "
            "It changes after every successful validation."
        )

    form = PasswordPromptForm(request.POST or None)
    return _prompt(request, form, action="support_pin_view", title="Support PIN", run=run)


@login_required
@require_POST
@recent_auth_required
def support_pin_generate(request: HttpRequest) -> HttpResponse:
    _require_own_pins(request)
    services.support_pin_generate(
        account=request.user, acting_user=request.user, ip=request.client_ip
    )
    messages.success(request, "A new Support PIN was generated. Use View to see it.")
    return redirect("home")


@login_required
@never_cache
@sensitive_post_parameters("password", "new_app_pin")
@require_http_methods(["GET", "POST"])
@recent_auth_required
def app_pin_view_edit(request: HttpRequest) -> HttpResponse:
    """View/Edit of the App Unlock PIN, behind the same password prompt."""
    _require_own_pins(request)

    def run(data):
        common = {
            "acting_user": request.user,
            "password": data["password"],
            "ip": request.client_ip,
        }
        if data["new_app_pin"]:
            result = services.app_pin_change(new_app_pin=data["new_app_pin"], **common)
            changed = "Your App Unlock PIN was changed. "
        else:
            result, changed = services.app_pin_reveal(**common), ""
        return result, changed + (
            "It unlocks the mobile app after inactivity. It is not your Support PIN."
        )

    form = AppPinForm(request.POST or None)
    return _prompt(request, form, action="app_pin_view_edit", title="App Unlock PIN", run=run)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def support_console(request: HttpRequest) -> HttpResponse:
    """Find an account, type the caller's PIN, see matched or not. No PIN is ever shown."""
    if not policies.can_use_support_console(request.user):
        raise PermissionDenied
    search = ConsoleSearchForm(request.GET if "q" in request.GET else None)
    results = (
        selectors.console_account_search(query=search.cleaned_data["q"])
        if search.is_bound and search.is_valid()
        else None
    )
    account, outcome, status = None, None, 200
    if request.method == "POST":
        form = ConsoleValidateForm(request.POST)
        if form.is_valid():
            account = selectors.console_account(account_id=form.cleaned_data["account"])
            if account is None:
                form.add_error(None, "That account cannot be validated.")
                status = 400
            else:
                outcome = services.support_pin_validate(
                    acting_user=request.user,
                    account=account,
                    pin=form.cleaned_data["pin"],
                    ip=request.client_ip,
                )
                # A fresh form: the PIN typed is never echoed back into the page.
                form = ConsoleValidateForm(initial={"account": account.pk})
        else:
            status = 400
            account = _account_from(request.POST.get("account", ""))
            form = _rebound_without_pin(request.POST)
    else:
        account = _account_from(request.GET.get("account", ""))
        form = ConsoleValidateForm(initial={"account": account.pk if account else None})
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
        "Outcome": ValidationOutcome,
    }
    return render(request, "support_pin/console.html", context, status=status)


def _account_from(raw: str):
    """The account a console request names, or None for a missing or malformed id."""
    if raw.isascii() and raw.isdigit() and len(raw) < 12:
        return selectors.console_account(account_id=int(raw))
    return None


def _rebound_without_pin(data) -> ConsoleValidateForm:
    """The invalid form again, for its errors, but never with the PIN text in it."""
    form = ConsoleValidateForm(data)
    form.is_valid()
    form.data = form.data.copy()
    form.data["pin"] = ""
    return form
