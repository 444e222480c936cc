"""The step every password prompt view takes: check the form's answers through the gate."""

from django.http import HttpRequest
from django.utils import timezone

from accounts import lockout
from accounts.auth_events import PromptPurpose, identity_confirm
from accounts.forms import IdentityForm


def identity_confirmed(request: HttpRequest, form: IdentityForm, *, purpose: PromptPurpose) -> bool:
    """Check a valid prompt form's password (and code) for `purpose`; put a refusal on it."""
    data = form.cleaned_data
    result = identity_confirm(
        request=request,
        password=data["password"],
        purpose=purpose,
        method=data.get("method"),
        code=data.get("code"),
    )
    form.locked = result.locked
    if result.ok:
        return True
    if result.locked:
        form.add_error(
            "password",
            lockout.prompt_lock_message(request)
            or lockout.lock_message(account=request.user, until=None),
        )
    elif result.throttled_until is not None:
        wait = max(1, int((result.throttled_until - timezone.now()).total_seconds()))
        form.add_error("code", f"Too many wrong codes. Try again in {wait} seconds.")
    elif result.passkey_missing:
        form.add_error("code", "Use your passkey or security key first, then confirm.")
    elif result.code_wrong:
        form.add_error("code", "That code is not right.")
    else:
        form.add_error("password", "The password is not correct.")
    return False
