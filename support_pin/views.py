"""PIN screens: the owner's View / Generate / View-Edit, and the support console."""

import time
from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import lockout
from accounts.auth_events import PromptPurpose
from accounts.reauth import recent_auth_required
from accounts.views.prompts import identity_confirmed
from ehr import policies
from support_pin import selectors, services
from support_pin.forms import AppPinForm, ConsoleSearchForm, ConsoleValidateForm, PasswordPromptForm
from support_pin.services import ValidationOutcome, ValidationResult


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%I:%M %p %Z")


# Which PIN the prompt just confirmed may be shown, once, by the next GET of pin_shown.
# The PIN itself is never put in the session: pin_shown reads it then.
SHOW_ONCE = "pin_to_show"
CONSOLE_OUTCOME = "console_outcome"  # {account id: [outcome, locked until, at]}: shown once
SHOW_WITHIN = 60  # seconds between the prompt and the page that shows the PIN

_SHOWN = {
    "support_pin": (
        "Support PIN",
        "Give this PIN to support when they ask for it. "
        "It changes after every successful validation.",
    ),
    "app_pin": (
        "App Unlock PIN",
        "It unlocks the mobile app after inactivity. It is not your Support PIN.",
    ),
}


def _prompt(request: HttpRequest, form, *, action: str, title: str, then) -> HttpResponse:
    """The password prompt; once it confirms who the user is, `then(cleaned_data)` runs and
    returns which PIN to show, and the browser is sent on to the page that shows it once.

    Post, then redirect: going Back from the PIN never re-posts the password into
    another showing of it, and reloading the page that showed it does not show it again.
    """
    if (
        request.method == "POST"
        and form.is_valid()
        and identity_confirmed(request, form, purpose=PromptPurpose.PIN_VIEW)
    ):
        which, changed = then(form.cleaned_data)
        request.session[SHOW_ONCE] = {"which": which, "changed": changed, "at": time.time()}
        return redirect("pin_shown")
    context = {"form": form, "action": action, "title": title}
    if request.method == "GET":  # after a refused password the form's error says it
        context["prompt_lock"] = lockout.prompt_lock_message(request)
    return render(request, "support_pin/password_prompt.html", context, status=form.http_status)


@login_required
@never_cache
@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
@policies.allowed_only(policies.can_manage_own_pins)
def support_pin_view(request: HttpRequest) -> HttpResponse:
    """The "Enter Your Password" prompt; the right password shows the Support PIN."""
    form = PasswordPromptForm(request.POST or None, user=request.user)
    return _prompt(
        request,
        form,
        action="support_pin_view",
        title="Support PIN",
        then=lambda data: ("support_pin", False),
    )


@login_required
@never_cache
@require_GET
@policies.allowed_only(policies.can_manage_own_pins)
def pin_shown(request: HttpRequest) -> HttpResponse:
    """Show the PIN the prompt just confirmed, once; the showing is what is recorded."""
    pending = request.session.pop(SHOW_ONCE, None)
    if pending is None or time.time() - pending["at"] > SHOW_WITHIN:
        messages.info(request, "For your security a PIN is shown only once. Use View again.")
        return redirect("home")
    common = {"acting_user": request.user, "ip": request.client_ip}
    if pending["which"] == "app_pin":
        pin = services.app_pin_reveal(**common)
    else:
        pin = services.support_pin_reveal(**common)
    title, note = _SHOWN[pending["which"]]
    if pending["changed"]:
        note = "Your App Unlock PIN was changed. " + note
    response = render(
        request, "support_pin/pin_shown.html", {"title": title, "pin": pin, "note": note}
    )
    response["Cache-Control"] = "no-store"  # never_cache adds the rest; this page holds a PIN
    return response


@login_required
@require_POST
@policies.allowed_only(policies.can_manage_own_pins)
@recent_auth_required(label="generate a new Support PIN")
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

    def then(data):
        if data["new_app_pin"]:
            services.app_pin_change(
                acting_user=request.user, new_app_pin=data["new_app_pin"], ip=request.client_ip
            )
        return "app_pin", bool(data["new_app_pin"])

    form = AppPinForm(request.POST or None, user=request.user)
    return _prompt(request, form, action="app_pin_view_edit", title="App Unlock PIN", then=then)


def _console(request: HttpRequest, *, account, form, outcome=None, status=200) -> HttpResponse:
    """Render the console: the search, the chosen account, its lock, the last outcome."""
    search = ConsoleSearchForm(request.GET if "q" in request.GET else None)
    results = (
        selectors.console_account_search(query=search.cleaned_data["q"])
        if search.is_bound and search.is_valid()
        else None
    )
    blocked = False
    if outcome is not None:  # the service just read the state
        lock = outcome.locked_until
        blocked = outcome.outcome is ValidationOutcome.BLOCKED
    elif account is not None:
        lock, blocked = selectors.validation_state(account=account)
    else:
        lock = None
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
        "blocked": blocked,
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
    # A fresh form: the PIN typed is never echoed back into the page.
    form = ConsoleValidateForm(initial={"account": account.pk if account else None})
    return _console(request, account=account, form=form, outcome=_outcome_for(request, account))


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
    if not policies.can_validate_pin_of(request.user, account):
        form.add_error(None, "You cannot validate your own Support PIN.")
        return _console(request, account=account, form=_rebound_without_pin(form), status=400)
    outcome = services.support_pin_validate(
        acting_user=request.user,
        account=account,
        pin=form.cleaned_data["pin"],
        ip=request.client_ip,
    )
    # The outcome is shown by the console's own address, once: reloading the page then
    # asks nothing again, where reloading this answer sent the PIN a second time (after
    # a match, to a PIN already replaced: a failed validation, counted and recorded).
    locked = outcome.locked_until.timestamp() if outcome.locked_until else None
    # Kept by account, so that two tabs validating two accounts each find their own; any
    # left from pages that never came are past showing and go.
    now = time.time()
    outcomes = {
        key: kept
        for key, kept in (request.session.get(CONSOLE_OUTCOME) or {}).items()
        if now - kept[2] <= SHOW_WITHIN
    }
    outcomes[str(account.pk)] = [outcome.outcome.value, locked, now]
    request.session[CONSOLE_OUTCOME] = outcomes
    query = request.GET.copy()  # the search the agent came from, if any
    query["account"] = str(account.pk)
    return redirect(f"{reverse('support_console')}?{query.urlencode()}")


def _outcome_for(request: HttpRequest, account) -> ValidationResult | None:
    """Return, once and within SHOW_WITHIN seconds, the outcome of the validation of
    `account` that redirected here."""
    outcomes = request.session.get(CONSOLE_OUTCOME)
    if account is None or not isinstance(outcomes, dict) or str(account.pk) not in outcomes:
        return None
    value, locked, at = outcomes.pop(str(account.pk))
    request.session[CONSOLE_OUTCOME] = outcomes
    if time.time() - at > SHOW_WITHIN:
        return None  # its page never came; a later visit shows the account as it is
    until = datetime.fromtimestamp(locked, tz=UTC) if locked is not None else None
    return ValidationResult(ValidationOutcome(value), until)


def _account_from(raw: str):
    """Return the account a console request names, or None for a missing or malformed id."""
    if raw.isascii() and raw.isdigit() and len(raw) < 12:
        return selectors.console_account(account_id=int(raw))
    return None


def _rebound_without_pin(form: ConsoleValidateForm) -> ConsoleValidateForm:
    """Return the invalid form, for its errors, but never with the PIN text in it."""
    form.data = form.data.copy()
    form.data["pin"] = ""
    return form
