"""Test data built through the services, so invariants and side effects come along."""

import itertools
import secrets
import time

from django.conf import settings
from django.utils import timezone
from django_otp.oath import totp
from django_otp_webauthn.models import WebAuthnCredential

from accounts.mfa import MFA_REQUIRED_ROLES
from accounts.models import AuthenticatorDevice, Practice, User
from accounts.reauth import REAUTH_AT
from accounts.roles import Role
from accounts.services import practice_create, user_create

PASSWORD = "correct-horse-battery-9"

_numbers = itertools.count(1)


def make_practice(name: str | None = None) -> Practice:
    n = next(_numbers)
    return practice_create(name=name or f"Practice {n}", group_id=100000 + n, acting_user=None)


def make_user(
    role: Role,
    *,
    practice: Practice | None = None,
    username: str | None = None,
    first_name: str = "Test",
    last_name: str = "User",
    password: str = PASSWORD,
    doctor_id: int | None = None,
    mfa: bool | None = None,
    passkey: bool = False,
    grace: bool | None = None,
) -> User:
    """Create an account as production would; roles that require MFA get an authenticator.

    Roles that require a passkey (MFA_PHISHING_RESISTANT_ROLES) are, unless told
    otherwise, in their grace period, as the accounts that had an authenticator app
    when passkeys came: they sign in with a code. `passkey` gives a stand-in one.
    """
    n = next(_numbers)
    username = username or f"{role.value}{n}"
    if role == Role.PROVIDER and doctor_id is None:
        doctor_id = 400000 + n
    user = user_create(
        username=username,
        email=f"{username}@example.org",
        password=password,
        first_name=first_name,
        last_name=last_name,
        role=role,
        practice=practice,
        doctor_id=doctor_id,
        acting_user=None,
    )
    enrolled = mfa if mfa is not None else role in MFA_REQUIRED_ROLES
    if enrolled:
        AuthenticatorDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    if passkey:
        add_stand_in_passkey(user)
    if grace is None:
        grace = enrolled and not passkey and role.value in settings.MFA_PHISHING_RESISTANT_ROLES
    if grace:
        User.objects.filter(pk=user.pk).update(passkey_grace_from=timezone.now())
        user.refresh_from_db(fields=["passkey_grace_from"])
    return user


def add_stand_in_passkey(user: User, name: str = "Security key") -> WebAuthnCredential:
    """A stored passkey no authenticator holds: it meets the passkey policy, and never signs in.

    Browser tests create real ones with Chromium's virtual authenticator.
    """
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77),
        aaguid="00000000-0000-0000-0000-000000000000",
    )


def totp_code(user: User) -> str:
    """The code the user's authenticator app shows right now."""
    device = AuthenticatorDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def confirm_identity(client) -> None:
    """Stand for the confirmation prompt: the re-authentication window starts now.

    Signing in does not open it; sensitive actions ask for the password (and a
    code) again, or run within a few minutes of that.
    """
    session = client.session
    session[REAUTH_AT] = time.time()
    session.save()


def streamed(response) -> bytes:
    """Read a streamed response to its end: its generator runs after the status line."""
    return b"".join(response.streaming_content)


def sent_mail() -> list:
    """Deliver what waits in the outbox (as the worker does), then return the mails sent."""
    from django.core import mail

    from outbox.worker import deliver_pending

    while deliver_pending():
        pass
    return mail.outbox
