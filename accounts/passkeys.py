"""Passkeys and security keys (WebAuthn) as a second factor, through django-otp-webauthn.

The library runs the ceremonies (its own script in the browser, its views and
py_webauthn on the server) and keeps each credential as a django-otp device
(`django_otp_webauthn.WebAuthnCredential`). What the project adds, here and in
accounts/views/passkeys.py, which wrap the library's views:

- The relying party: `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGINS`, read at every
  ceremony (`PasskeyHelper`), checked at start-up (ehr/settings.py).
- A passkey is only ever a second factor, after the password: the library's
  passwordless sign-in is off, and a ceremony is for the user who passed the
  password step or is signed in, never for whoever a credential names.
- Every add, use, failure and removal writes its audit event, and an add or a
  removal also mails the owner at once (`_mail_owner`), in the same transaction:
  a session relayed by a phishing site that adds its own passkey is seen by the
  one person who knows it was not them. Failures are
  throttled as wrong codes are (`PasskeyFailures`, one count per user: a
  failure cannot always be pinned on one credential), and shown with the wait.
- The policy: the roles in MFA_PHISHING_RESISTANT_ROLES must have a passkey
  (`passkey_policy`); accounts that had only an authenticator app when the policy
  came have a grace period counted from then (`User.passkey_grace_from`).
- A passkey confirms a prompt inside a session (re-authentication, the PIN
  view, ...) through a proof kept in the session: recent, for this user, used once.
"""

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import PasskeyFailures, User
from audit import kinds
from audit.services import audit_event_record
from ehr.moments import shown_at
from outbox.services import mail_enqueue_each_zone

PASSKEY = "passkey"  # the prompt forms' method for a passkey
NAME_MAX = 64  # characters of a passkey's name
PROOF = "passkey_proof"  # session key: a passkey just confirmed inside this session
PROOF_SECONDS = 120  # how long that confirmation waits for the password
ENROLMENT = "passkey_enrolment"  # session key: the name of the passkey being added


class PasskeyHelper(WebAuthnHelper):
    """django-otp-webauthn's helper, with the relying party from the project's settings."""

    def get_relying_party_domain(self) -> str:
        return settings.WEBAUTHN_RP_ID

    def get_allowed_origins(self) -> list[str]:
        return list(settings.WEBAUTHN_ORIGINS)


# Reading


_HAS = "_has_passkey"  # where has_passkey keeps its answer on the user object


def passkeys_work_at(request: HttpRequest) -> str | None:
    """Return this page at an origin where passkeys work, when it was opened elsewhere.

    A browser creates and uses a passkey only on an origin of the relying party
    (`WEBAUTHN_ORIGINS`). The same server opened at another address (in development
    http://127.0.0.1:8000 for http://localhost:8000; in production a second host
    name) would show a passkey button whose every use fails with an error that names
    neither address, so the page says where to go instead.
    """
    try:
        origin = f"{request.scheme}://{request.get_host()}".lower()
    except DisallowedHost:  # an error page for a host the site does not serve
        return None
    if origin in settings.WEBAUTHN_ORIGINS:
        return None
    match = request.resolver_match
    if match is not None and match.url_name == "login_mfa":
        # The second step opens only after the first at the same address: start there.
        return settings.WEBAUTHN_ORIGINS[0] + reverse("login")
    return settings.WEBAUTHN_ORIGINS[0] + request.get_full_path()


def has_passkey(user: User) -> bool:
    """Whether the user has a passkey, looked up once per user object (a request)."""
    if _HAS not in user.__dict__:
        user.__dict__[_HAS] = WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    return user.__dict__[_HAS]


def _forget(user: User) -> None:
    user.__dict__.pop(_HAS, None)


def passkey_list(user: User) -> list[WebAuthnCredential]:
    """The user's passkeys for the Security tab, newest first (one query)."""
    return list(
        WebAuthnCredential.objects.filter(user=user, confirmed=True)
        .only("pk", "name", "created_at", "last_used_at", "user_id")
        .order_by("-created_at", "-pk")
    )


class Policy(enum.Enum):
    NOT_REQUIRED = "not required"  # the user's roles do not need a passkey
    MET = "met"  # they do, and this session was confirmed with one
    GRACE = "grace"  # they do, the user has none yet, and the grace period runs
    HELD = "held"  # they do, the user has none: the Security tab only
    RECOVERY = "recovery"  # the user has one, but this session used another factor


@dataclass(frozen=True)
class PolicyState:
    policy: Policy
    grace_until: datetime | None = None

    @property
    def in_grace(self) -> bool:
        return self.policy is Policy.GRACE

    @property
    def held(self) -> bool:
        """Whether the session may use the Security tab only."""
        return self.policy in (Policy.HELD, Policy.RECOVERY)

    @property
    def recovery(self) -> bool:
        return self.policy is Policy.RECOVERY


def passkey_required(user: User) -> bool:
    return bool(user.roles & set(settings.MFA_PHISHING_RESISTANT_ROLES))


def passkey_policy(user: User, *, verified_device=None) -> PolicyState:
    """Where the user's session stands with MFA_PHISHING_RESISTANT_ROLES.

    Those roles sign in with a passkey: a session confirmed with one meets the
    policy (without a query). A session that used the authenticator app or a
    backup code (one query: whether the user has a passkey) reaches only the
    Security tab: to replace a lost passkey, or to add a first one, except
    during the account's grace period.
    """
    if not passkey_required(user):
        return PolicyState(Policy.NOT_REQUIRED)
    if isinstance(verified_device, WebAuthnCredential):
        return PolicyState(Policy.MET)
    if has_passkey(user):
        return PolicyState(Policy.RECOVERY)
    if user.passkey_grace_from is not None:
        until = user.passkey_grace_from + timedelta(days=settings.MFA_PHISHING_RESISTANT_GRACE_DAYS)
        if timezone.now() < until:
            return PolicyState(Policy.GRACE, grace_until=until)
    return PolicyState(Policy.HELD)


# Failures, counted as wrong codes are


def passkey_throttled_until(user: User) -> datetime | None:
    """When the user's next passkey check is allowed, if it is not now."""
    failures = PasskeyFailures.objects.filter(user=user).first()
    if failures is None:
        return None
    allowed, details = failures.verify_is_allowed()
    return None if allowed else (details or {}).get("locked_until")


@transaction.atomic
def passkey_failed(*, acting_user: User, ip: str | None) -> None:
    """Record a failed passkey check of the user (sign-in or a prompt) and count it."""
    failures, _ = PasskeyFailures.objects.select_for_update().get_or_create(user=acting_user)
    failures.throttle_increment()
    audit_event_record(
        kind=kinds.PASSKEY_FAILED, acting_user=acting_user, account=acting_user, ip=ip
    )


@transaction.atomic
def passkey_used(*, acting_user: User, ip: str | None) -> None:
    """Record a passkey check the user passed; the count of failures starts again."""
    PasskeyFailures.objects.filter(user=acting_user).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    audit_event_record(kind=kinds.PASSKEY_USED, acting_user=acting_user, account=acting_user, ip=ip)


# The proof a passkey gives a prompt inside a session


def passkey_proof_keep(request: HttpRequest) -> None:
    request.session[PROOF] = {"user": request.user.pk, "at": time.time()}


def passkey_proof_present(request: HttpRequest) -> bool:
    proof = request.session.get(PROOF)
    return (
        isinstance(proof, dict)
        and proof.get("user") == request.user.pk
        and 0 <= time.time() - float(proof.get("at", 0)) <= PROOF_SECONDS
    )


def passkey_proof_take(request: HttpRequest) -> bool:
    """Use the session's passkey confirmation (once); return whether there was a valid one."""
    present = passkey_proof_present(request)
    request.session.pop(PROOF, None)
    return present


# Adding and removing


@transaction.atomic
def passkey_added(
    *, acting_user: User, device: WebAuthnCredential, name: str, ip: str | None
) -> bool:
    """Name a passkey the library just stored and record it; return whether it is the
    account's first second factor (its other sessions then signed in without one).
    """
    from accounts import mfa

    device.name = name
    device.save(update_fields=["name"])
    _forget(acting_user)
    audit_event_record(
        kind=kinds.PASSKEY_ADDED, acting_user=acting_user, account=acting_user, ip=ip
    )
    _mail_owner(acting_user, f'The passkey or security key "{name}" was added to', ip)
    others = WebAuthnCredential.objects.filter(user=acting_user).exclude(pk=device.pk)
    return mfa.mfa_device(acting_user) is None and not others.exists()


@transaction.atomic
def passkey_remove(*, acting_user: User, passkey_id: int, ip: str | None) -> bool:
    """Remove one of the user's own passkeys (the caller confirmed who they are)."""
    device = WebAuthnCredential.objects.filter(pk=passkey_id, user=acting_user).first()
    _forget(acting_user)
    if device is None:
        return False
    device.delete()
    audit_event_record(
        kind=kinds.PASSKEY_REMOVED, acting_user=acting_user, account=acting_user, ip=ip
    )
    _mail_owner(acting_user, f'The passkey or security key "{device.name}" was removed from', ip)
    return True


def _mail_owner(account: User, what: str, ip: str | None) -> None:
    """Tell the owner of a change to their factors, whoever made it (a security notice)."""
    where = f" from {ip}" if ip else ""
    now = timezone.now()

    def body(time_zone: ZoneInfo) -> str:
        return (
            f"Hello {account.display_name},\n\n"
            f"{what} your account on {shown_at(now, time_zone)}{where}.\n\n"
            "If this was you, there is nothing to do. If it was not, someone has your "
            "password and a sign-in code: change your password now and tell your practice "
            "administrator, who can reset your two-factor authentication and sign you out "
            "everywhere.\n"
        )

    mail_enqueue_each_zone(
        people=[account], subject="A passkey changed on your EHR account", body=body
    )
