"""Template context the accounts app adds to every page."""

from django.http import HttpRequest

from accounts import passkeys


def passkey_policy(request: HttpRequest) -> dict:
    """Where the signed-in user stands with the passkey policy (the grace notice reads it).

    No query of its own: MfaRequiredMiddleware already asked for this user object.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    state = passkeys.passkey_policy(user, verified_device=getattr(user, "otp_device", None))
    return {"passkey_policy": state}


def passkey_origin(request: HttpRequest) -> dict:
    """`passkeys_work_at`: this page where passkeys work, when it was opened elsewhere."""
    return {"passkeys_work_at": passkeys.passkeys_work_at(request)}
