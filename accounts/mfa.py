"""Two-factor authentication with django-otp: an authenticator app (TOTP), passkeys and
security keys (WebAuthn, accounts/passkeys.py), and backup codes.

Services here write devices and their audit events; the sign-in step and the
Security tab call them. Verification is always against the kind of device the
user chose, so throttling on the app codes never blocks the backup codes
(django-two-factor-auth #473), and a throttled user is told for how long.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from accounts import passkeys
from accounts.models import AuthenticatorDevice, BackupCodeDevice, User
from accounts.roles import Role
from audit import kinds
from audit.services import audit_event_record
from ehr import crypto
from support_pin.services import field_keys_rotation_record

MFA_REQUIRED_ROLES = frozenset(
    {Role.SUPPORT_AGENT, Role.COMPLIANCE_OFFICER, Role.PRACTICE_ADMIN, Role.PLATFORM_AUDITOR}
)
BACKUP_CODES = 10
APP = "app"
BACKUP = "backup"
TOTP_PATTERN = re.compile(r"[0-9]{6}")
BACKUP_PATTERN = re.compile(r"[a-z2-7]{8}")


def mfa_required(user: User) -> bool:
    return settings.MFA_REQUIRED_FOR_ALL or bool(user.roles & {r.value for r in MFA_REQUIRED_ROLES})


_DEVICE = "_mfa_device"  # where mfa_device keeps its answer on the user object


def mfa_device(user: User) -> AuthenticatorDevice | None:
    """Return the user's confirmed authenticator, looked up once per user object (a request).

    The services below that add or remove devices forget the answer they changed.
    """
    if _DEVICE not in user.__dict__:
        user.__dict__[_DEVICE] = AuthenticatorDevice.objects.filter(
            user=user, confirmed=True
        ).first()
    return user.__dict__[_DEVICE]


def _forget_device(user: User) -> None:
    user.__dict__.pop(_DEVICE, None)


def mfa_enrolled(user: User) -> bool:
    """Whether signing in asks the user for a second factor: an authenticator app or a passkey."""
    return mfa_device(user) is not None or passkeys.has_passkey(user)


def backup_codes_exist(user: User) -> bool:
    return BackupCodeDevice.objects.filter(user=user, confirmed=True).exists()


def normalize_code(method: str, raw: str) -> str | None:
    """Return the code as the device expects it, or None when it cannot be one."""
    text = re.sub(r"[\s-]", "", raw or "")
    if method == APP:
        return text if TOTP_PATTERN.fullmatch(text) else None
    text = text.lower()
    return text if BACKUP_PATTERN.fullmatch(text) else None


@dataclass(frozen=True)
class CodeCheck:
    device: AuthenticatorDevice | StaticDevice | None
    throttled_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.device is not None


def mfa_check(*, acting_user: User, method: str, code: str, ip: str | None) -> CodeCheck:
    """Check a code against the user's device of the chosen kind; record failures.

    The device row is locked for the check, as django-otp's own `for_verify`
    lookup does: two requests carrying the same code are served one after the
    other, and the second finds the code already used (`last_t`, or the backup
    code deleted).
    """
    model = AuthenticatorDevice if method == APP else BackupCodeDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=acting_user, confirmed=True).first()
        if device is None:
            return CodeCheck(None)
        allowed, details = device.verify_is_allowed()
        if not allowed:
            return CodeCheck(None, throttled_until=(details or {}).get("locked_until"))
        if device.verify_token(code):
            if method == BACKUP:
                audit_event_record(
                    kind=kinds.MFA_BACKUP_CODE_USED,
                    acting_user=acting_user,
                    account=acting_user,
                    ip=ip,
                )
            return CodeCheck(device)
        audit_event_record(
            kind=kinds.MFA_FAILED, acting_user=acting_user, account=acting_user, ip=ip
        )
    # A wrong code is reported as wrong; the delay it starts is reported when it refuses one.
    return CodeCheck(None)


def mfa_pending_device(user: User) -> AuthenticatorDevice | None:
    """Return the authenticator being set up (shown as a QR code until a code confirms it)."""
    return AuthenticatorDevice.objects.filter(user=user, confirmed=False).first()


@transaction.atomic
def mfa_enrollment_start(*, acting_user: User) -> AuthenticatorDevice:
    """Create a new, unconfirmed authenticator for the user (dropping any earlier one)."""
    AuthenticatorDevice.objects.filter(user=acting_user, confirmed=False).delete()
    return AuthenticatorDevice.objects.create(
        user=acting_user, name="Authenticator app", confirmed=False
    )


@transaction.atomic
def mfa_enrollment_confirm(
    *, acting_user: User, device_id: int, code: str, ip: str | None, keep_session_key: str | None
) -> list[str] | None:
    """Confirm the pending authenticator with a code from it; return the new backup codes.

    The account's other sessions signed in without a code: they are signed out.
    """
    from accounts.auth_events import sessions_end_all

    user = acting_user
    device = (
        AuthenticatorDevice.objects.select_for_update()
        .filter(pk=device_id, user=user, confirmed=False)
        .first()
    )
    if device is None or not device.verify_token(code):
        return None
    AuthenticatorDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    _forget_device(user)
    codes = _new_backup_codes(user)
    audit_event_record(kind=kinds.MFA_ENROLLED, acting_user=user, account=user, ip=ip)
    sessions_end_all(account=user, acting_user=user, ip=ip, keep_session_key=keep_session_key)
    return codes


@transaction.atomic
def mfa_backup_codes_replace(*, acting_user: User, ip: str | None) -> list[str]:
    """New backup codes for the user (the old ones stop working); shown once."""
    codes = _new_backup_codes(acting_user)
    audit_event_record(
        kind=kinds.MFA_BACKUP_CODES_REPLACED, acting_user=acting_user, account=acting_user, ip=ip
    )
    return codes


def _new_backup_codes(user: User) -> list[str]:
    """Replace the user's backup codes; return them (stored only as digests)."""
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=BackupCodeDevice.stored_form(code)) for code in codes]
    )
    return codes


def _remove_every_device(user: User) -> None:
    AuthenticatorDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    passkeys.WebAuthnCredential.objects.filter(user=user).delete()
    _forget_device(user)
    passkeys._forget(user)


@transaction.atomic
def mfa_remove(*, acting_user: User, ip: str | None) -> None:
    """Remove every device, passkeys too (the caller confirmed the password and a factor)."""
    _remove_every_device(acting_user)
    audit_event_record(kind=kinds.MFA_REMOVED, acting_user=acting_user, account=acting_user, ip=ip)


@transaction.atomic
def mfa_reset(*, account: User, acting_user: User, ip: str | None) -> None:
    """Remove every second factor of someone who lost theirs (a platform administrator acts).

    The account's sessions end; its next sign-in takes the password only and,
    where its role needs a second factor, leads straight to setting one up.
    """
    from accounts.auth_events import sessions_end_all

    _remove_every_device(account)
    audit_event_record(kind=kinds.MFA_RESET, acting_user=acting_user, account=account, ip=ip)
    sessions_end_all(account=account, acting_user=acting_user, ip=ip)


@transaction.atomic
def mfa_enroll_with_key(*, user: User, key_hex: str) -> AuthenticatorDevice:
    """Enrol a known secret (the development demo accounts only)."""
    AuthenticatorDevice.objects.filter(user=user).delete()
    device = AuthenticatorDevice.objects.create(
        user=user, name="Authenticator app", key=key_hex, confirmed=True
    )
    _forget_device(user)
    audit_event_record(kind=kinds.MFA_ENROLLED, acting_user=None, account=user, ip=None)
    return device


def authenticator_keys_rotate(*, batch_size: int = 500) -> int:
    """Re-seal authenticator secrets not under the primary FIELD_ENCRYPTION_KEYS key."""
    prefix = crypto.current_prefix()
    done = 0
    while True:
        with transaction.atomic():
            devices = list(
                AuthenticatorDevice.objects.select_for_update(skip_locked=True)
                .exclude(key__startswith=prefix)
                .order_by("pk")[:batch_size]
            )
            for device in devices:
                secret = device.bin_key
                device.key = crypto.encrypt_bytes(secret, aad=device._aad())
                device.save(update_fields=["key"])
            if devices:  # in the batch's transaction: rows re-keyed are always in the log
                field_keys_rotation_record(count=len(devices), what="authenticator secrets")
        done += len(devices)
        if len(devices) < batch_size:
            return done
