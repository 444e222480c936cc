"""Users, practices and the profiles of the Account Settings pages."""

import secrets
from binascii import unhexlify
from functools import cached_property
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_otp.models import ThrottlingMixin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from phonenumber_field.modelfields import PhoneNumberField

from accounts.roles import Role
from accounts.validators import (
    validate_country,
    validate_plain_name,
    validate_time_zone,
    validate_username_not_only_digits,
)
from ehr import crypto

DEFAULT_TIME_ZONE = "America/New_York"


def default_country() -> str:
    """Return the country of a new practice: PHONE_REGION (PHONENUMBER_DEFAULT_REGION), else US."""
    return getattr(settings, "PHONENUMBER_DEFAULT_REGION", None) or "US"


class Practice(models.Model):
    """A medical practice: the unit that owns providers, staff and their audit trail."""

    name = models.CharField(max_length=200, help_text="The practice's name as shown to its users.")
    group_id = models.PositiveIntegerField(
        "Group ID", unique=True, help_text="Practice Group ID shown on every member's profile."
    )
    country = models.CharField(
        max_length=2,
        default=default_country,
        validators=[validate_country],
        help_text=(
            "ISO 3166-1 code of the practice's country (US, CA, GB): its members' phone "
            "numbers are read and shown in that country's national format."
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in: a practice member, or one of the platform's own people.

    Usernames are ASCII letters, digits and @ . + - _ only, unique whatever their
    case. Django would allow any Unicode letter, and with it names that look
    like another person's (a Cyrillic o in "dori") in the audit log and the
    support console, or that no keyboard can type again (full-width letters). Support
    agents read and type usernames over the phone, so ASCII is what serves
    them; it also leaves no lookalikes for a confusables table to catch.
    """

    username_validator = ASCIIUsernameValidator()
    username = models.CharField(
        "username",
        max_length=150,
        unique=True,
        help_text="150 characters or fewer: ASCII letters, digits and @ . + - _ only, not digits alone.",
        validators=[username_validator, validate_username_not_only_digits],
        error_messages={"unique": "That username is taken."},
    )

    # Django's own, refusing what would break a mail subject or an exported line, or
    # reorder what the name shows (every way an account is made or changed: forms,
    # the admin, services that call full_clean).
    first_name = models.CharField(
        "first name", max_length=150, blank=True, validators=[validate_plain_name]
    )
    last_name = models.CharField(
        "last name", max_length=150, blank=True, validators=[validate_plain_name]
    )

    practice = models.ForeignKey(
        Practice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        help_text="The practice this account belongs to; empty for support agents and auditors.",
    )
    time_zone = models.CharField(
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text="IANA time zone in which this user reads dates and times.",
    )
    passkey_grace_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When this account's grace period for adding a passkey began: the passkey "
            "policy (MFA_PHISHING_RESISTANT_ROLES) found it signing in with an authenticator "
            "app only. Empty: no grace, a role that needs a passkey needs it at once."
        ),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_ci_unique",
                violation_error_message="That username is taken.",
            ),
            # An email address is unique within a practice (and among the platform's own
            # people), not across the platform: someone may work at two practices, and
            # no form may tell whether an address is in use at another practice.
            models.UniqueConstraint(
                Lower("email"),
                "practice",
                condition=~models.Q(email=""),
                name="accounts_user_email_practice_unique",
                violation_error_message=(
                    "Another account of this practice already uses this email address."
                ),
            ),
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email="") & models.Q(practice__isnull=True),
                name="accounts_user_email_platform_unique",
                violation_error_message="Another platform account already uses this email address.",
            ),
        ]

    @cached_property
    def roles(self) -> frozenset[str]:
        """Return the names of this user's roles (one query per request, then cached)."""
        return frozenset(self.groups.values_list("name", flat=True))

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles

    @property
    def is_provider(self) -> bool:
        return self.has_role(Role.PROVIDER)

    @property
    def zone(self) -> ZoneInfo:
        """The zone this user reads times in; UTC for one the tz database no longer has.

        The field is checked when it is set, but a tz database upgrade can drop a zone,
        and a page, a report or a mail must not fail for it.
        """
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    @property
    def display_name(self) -> str:
        """Name as the product shows it: first and last name as entered, else the username."""
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.username


def _random_image_name(folder: str, filename: str) -> str:
    # The client's file name is never used: it may carry a path, a script extension
    # or personal data. Only the extension chosen by the image check survives.
    suffix = PurePosixPath(filename).suffix.lower()
    return f"{folder}/{secrets.token_hex(16)}{suffix}"


def profile_picture_path(instance: "ProviderProfile", filename: str) -> str:
    return _random_image_name("profile-pictures", filename)


def business_logo_path(instance: "ProviderProfile", filename: str) -> str:
    return _random_image_name("business-logos", filename)


class Specialty(models.Model):
    """A medical specialty a provider can list on their profile."""

    name = models.CharField(max_length=100, unique=True, help_text="Specialty name.")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "specialties"

    def __str__(self) -> str:
        return self.name


class Salutation(models.TextChoices):
    DR = "Dr.", "Dr."
    MR = "Mr.", "Mr."
    MS = "Ms.", "Ms."
    MRS = "Mrs.", "Mrs."
    MX = "Mx.", "Mx."


class Plan(models.TextChoices):
    EMPLOYEE = "employee", "Employee"
    INDIVIDUAL = "individual", "Individual"
    PRACTICE = "practice", "Practice"
    ENTERPRISE = "enterprise", "Enterprise"


class ProviderProfile(models.Model):
    """The Account Settings profile of one provider (the seed's Profile tab)."""

    user = models.OneToOneField(
        User,
        on_delete=models.CASCADE,
        related_name="provider_profile",
        help_text="The provider this profile describes.",
    )
    doctor_id = models.PositiveIntegerField(
        unique=True, help_text="Doctor ID, assigned by the platform; shown read-only."
    )
    specialties = models.ManyToManyField(
        Specialty, blank=True, related_name="providers", help_text="Specialties practised."
    )
    job_title = models.CharField(max_length=100, blank=True, help_text="Job title.")
    salutation = models.CharField(
        max_length=8,
        blank=True,
        choices=Salutation.choices,
        help_text="Salutation before the name.",
    )
    suffix = models.CharField(
        max_length=20, blank=True, help_text="Suffix after the name (MD, DO)."
    )
    website = models.URLField(max_length=200, blank=True, help_text="Practice or personal website.")
    home_phone = PhoneNumberField(blank=True, help_text="Home phone number.")
    office_phone = PhoneNumberField(blank=True, help_text="Office phone number.")
    cell_phone = PhoneNumberField(blank=True, help_text="Cell phone number.")
    current_plan = models.CharField(
        max_length=20,
        choices=Plan.choices,
        default=Plan.EMPLOYEE,
        help_text="Subscription plan; changed by billing, shown read-only here.",
    )
    profile_picture = models.ImageField(
        upload_to=profile_picture_path,
        blank=True,
        max_length=200,
        help_text="Attached to patient emails; stored under a random name, shown to the practice.",
    )
    business_logo = models.ImageField(
        upload_to=business_logo_path,
        blank=True,
        max_length=200,
        help_text="Practice business logo, attached to emails and official forms.",
    )
    display_logo_on_faxes = models.BooleanField(
        default=False, help_text="Display the business logo on fax cover sheets."
    )

    def __str__(self) -> str:
        return f"{self.doctor_id} ({self.user.display_name})"


class StaffProfile(models.Model):
    """The Staff Account Information of one non-provider account."""

    user = models.OneToOneField(
        User,
        on_delete=models.CASCADE,
        related_name="staff_profile",
        help_text="The staff member this profile describes.",
    )
    home_phone = PhoneNumberField(blank=True, help_text="Home phone number.")
    cell_phone = PhoneNumberField(blank=True, help_text="Cell phone number.")

    def __str__(self) -> str:
        return f"Staff profile of {self.user.username}"


class UserSession(AbstractBaseSession):
    """One browser session: Django's session store and the Security tab's list, in one row.

    `session_key` holds the first 160 bits of the SHA-256 of the key the
    browser's cookie carries, never the key itself (accounts/session_store.py):
    a reader of this table cannot take over a session. A signed-in session
    names its user. `expire_date` is fixed when the session begins (sign-in
    begins a new one), so SESSION_MAX_HOURS is an absolute cap whatever the
    activity. A session ended from elsewhere keeps its row, without its data,
    until it expires, so its browser can be told why it was signed out.
    """

    class EndReason(models.TextChoices):
        SIGNED_OUT = "signed_out", "Signed out"
        IDLE = "idle", "Signed out after inactivity"
        REVOKED = "revoked", "Signed out remotely"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        DEACTIVATED = "deactivated", "Account deactivated"
        SESSION_CAP = "session_cap", "Reached the session time limit"

    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sessions",
        help_text="Who signed in with this session; empty before sign-in.",
    )
    ip = models.GenericIPAddressField(null=True, blank=True, help_text="Client IP at sign-in.")
    user_agent = models.CharField(max_length=256, blank=True, help_text="Browser at sign-in.")
    created_at = models.DateTimeField(
        default=timezone.now, help_text="When the session began (for a signed-in one: sign-in)."
    )
    last_seen_at = models.DateTimeField(
        default=timezone.now, help_text="When the session was last saved by a request."
    )
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was ended from elsewhere; it no longer loads."
    )
    end_reason = models.CharField(
        max_length=20, blank=True, choices=EndReason.choices, help_text="Why it ended."
    )

    class Meta:
        indexes = [models.Index(fields=["user", "ended_at"], name="accounts_session_user_idx")]

    @classmethod
    def get_session_store_class(cls):
        from accounts.session_store import SessionStore

        return SessionStore

    def __str__(self) -> str:
        return f"Session of user {self.user_id} from {self.ip}"


class AuthenticatorDevice(TOTPDevice):
    """django-otp's TOTP device, with its secret encrypted at rest.

    Same table as TOTPDevice (a proxy): `key` holds the 20-byte secret sealed by
    AES-256-GCM (ehr/crypto.py), bound to this model, field and user, instead of
    django-otp's plain hex. Everything that verifies codes goes through `bin_key`.
    """

    class Meta:
        proxy = True
        verbose_name = "authenticator app"

    def _aad(self) -> bytes:
        return crypto.associated_data(
            model="accounts.AuthenticatorDevice", field="key", owner_pk=self.user_id
        )

    def save(self, *args, **kwargs):
        if self.key and not self.key.startswith(f"{crypto.VERSION}:"):
            self.key = crypto.encrypt_bytes(unhexlify(self.key.encode()), aad=self._aad())
        super().save(*args, **kwargs)

    @property
    def bin_key(self) -> bytes:
        if self.key.startswith(f"{crypto.VERSION}:"):
            return crypto.decrypt_bytes(self.key, aad=self._aad())
        return unhexlify(self.key.encode())


class BackupCodeDevice(StaticDevice):
    """django-otp's backup-code device, with the codes stored only as keyed digests.

    Same tables as StaticDevice and StaticToken (a proxy): each token row holds
    `crypto.keyed_digests(code)` under the current key instead of the code, so a
    reader of the database or a backup gets no working second factor. Verifying
    is django-otp's own logic (throttling, one use per code) over the digests of
    the typed code under every key in the ring.
    """

    class Meta:
        proxy = True
        verbose_name = "backup codes"

    @staticmethod
    def stored_form(code: str) -> str:
        """Return what is stored for a new code: its digest under the current key."""
        return crypto.keyed_digests(code, purpose=BACKUP_CODE_PURPOSE)[0]

    def verify_token(self, token: str) -> bool:
        # django-otp's StaticDevice.verify_token, matching any of the code's digests.
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        digests = crypto.keyed_digests(token, purpose=BACKUP_CODE_PURPOSE)
        match = self.token_set.filter(token__in=digests).first()
        if match is None:
            self.throttle_increment()
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True


BACKUP_CODE_PURPOSE = "accounts.BackupCodeDevice.token"


class PasswordResetRequest(models.Model):
    """One password reset request that was let through, kept while it counts towards the limits.

    Requests are limited per typed address and per client (accounts/password_reset.py),
    whether or not an account uses the address, so the limits tell nobody which
    addresses have accounts. The address is kept only as a keyed digest
    (`ehr.crypto.keyed_digests`): this table shows neither what was typed nor whether
    an account uses it. Rows older than PASSWORD_RESET_LIMIT_WINDOW are deleted by
    the next request.
    """

    address_digest = models.CharField(
        max_length=16, help_text="Keyed digest of the typed email address, case-folded."
    )
    client = models.CharField(
        max_length=64,
        blank=True,
        help_text="The client's IPv4 address, or its IPv6 /64 network; empty when unknown.",
    )
    requested_at = models.DateTimeField(default=timezone.now, help_text="When it was requested.")

    class Meta:
        indexes = [
            models.Index(fields=["address_digest", "requested_at"], name="accounts_reset_addr_idx"),
            models.Index(fields=["client", "requested_at"], name="accounts_reset_client_idx"),
            models.Index(fields=["requested_at"], name="accounts_reset_time_idx"),
        ]

    def __str__(self) -> str:
        return f"Password reset request at {self.requested_at:%Y-%m-%d %H:%M}"


class _AlwaysAllowed(models.Model):
    """The end of ThrottlingMixin's chain (django-otp's Device plays this part for devices)."""

    class Meta:
        abstract = True

    def verify_is_allowed(self):
        return True, None


class PasskeyFailures(ThrottlingMixin, _AlwaysAllowed):
    """Consecutive failed passkey checks of one user, throttled as wrong codes are.

    The passkeys themselves are django-otp-webauthn's credentials (one django-otp
    device each); a failure cannot always be pinned on one of them (an unknown or
    removed credential, another user's), so the user's passkeys share this count:
    each failure doubles the wait before the next check (OTP_WEBAUTHN_THROTTLE_FACTOR
    seconds, then twice that, ...), and a success resets it (accounts/passkeys.py).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="passkey_failures",
        help_text="Whose passkey checks these are.",
    )

    class Meta:
        verbose_name = "passkey failures"
        verbose_name_plural = "passkey failures"

    def __str__(self) -> str:
        return f"Passkey failures of user {self.user_id}"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_WEBAUTHN_THROTTLE_FACTOR", 1)
