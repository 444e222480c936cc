"""Opening, using, expiring and reviewing break-glass access. Every step is audited."""

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User, default_country
from accounts.phones import phone_display
from accounts.roles import Role
from audit import kinds
from audit.services import audit_event_record
from break_glass import conf
from break_glass.models import BreakGlassGrant, ReviewOutcome
from ehr.moments import shown_at
from ehr.policies import can_review_break_glass
from outbox.services import mail_enqueue, mail_enqueue_each_zone
from support_pin.services import support_pin_generate


def _record(kind, grant: BreakGlassGrant, *, acting_user: User | None, ip: str | None, **params):
    audit_event_record(
        kind=kind,
        acting_user=acting_user,
        account=grant.account,
        ip=ip,
        params={"grant": grant.pk, **params},
        data={"break_glass": grant.pk},
    )


@transaction.atomic
def break_glass_open(
    *, acting_user: User, account: User, justification: str, minutes: int, ip: str | None
) -> BreakGlassGrant:
    """Open time-limited access to `account`; tell its owner and its reviewers now.

    Break-glass serves a caller who cannot give a practice member's Support
    PIN, so only accounts that belong to a practice are opened, and an agent
    never opens its own (it is no caller to itself, and would otherwise replace
    its own PIN without its password). Accounts without a practice (support
    agents, platform auditors) are refused rather than given to the platform
    auditors to review: they are the platform's own staff, whose identity is
    verified internally, not by showing their details to a colleague on the
    phone. So every grant has reviewers who can act: the compliance officers of
    the account's practice and the platform auditors
    (`ehr.policies.can_review_break_glass`). The practice's compliance officers
    are mailed, or the platform auditors when the practice has none besides the
    account's owner.
    """
    if not acting_user.has_role(Role.SUPPORT_AGENT):
        raise PermissionDenied("only support agents open break-glass access")
    if account.pk == acting_user.pk:
        raise PermissionDenied("an agent never opens break-glass access to its own account")
    # The account's row, locked: a deactivation at the same moment either comes first and
    # is seen here, or waits and then ends this access (accounts.services.user_set_active).
    if (
        not User.objects.select_for_update(no_key=True)
        .values_list("is_active", flat=True)
        .get(pk=account.pk)
    ):
        raise PermissionDenied("break-glass access never opens a deactivated account")
    if account.practice_id is None:
        raise PermissionDenied(
            "break-glass access opens practice members' accounts only; "
            "platform staff are verified internally"
        )
    reason = " ".join(justification.split())
    if len(reason) < conf.MIN_JUSTIFICATION:
        raise ValidationError(
            f"Write at least {conf.MIN_JUSTIFICATION} characters on why this access is needed."
        )
    if not 1 <= minutes <= conf.MAX_MINUTES:
        raise ValidationError(f"Choose between 1 and {conf.MAX_MINUTES} minutes.")
    now = timezone.now()
    grant = BreakGlassGrant.objects.create(
        agent=acting_user,
        account=account,
        justification=reason,
        opened_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    _record(
        kinds.BREAK_GLASS_OPENED,
        grant,
        acting_user=acting_user,
        ip=ip,
        minutes=minutes,
        justification=reason[:500],
    )
    _mail_opened(grant.pk)
    return grant


def _mail_opened(grant_id: int) -> None:
    grant = BreakGlassGrant.objects.select_related("account", "agent").get(pk=grant_id)
    account = grant.account

    def body(time_zone: ZoneInfo) -> str:
        return (
            f"Support agent {grant.agent.display_name} opened break-glass access #{grant.pk} "
            f"to the account of {account.display_name} at {shown_at(grant.opened_at, time_zone)}, "
            f"until {shown_at(grant.expires_at, time_zone, time_only=True)}.\n\n"
            f"Reason given: {grant.justification}\n\n"
            "Every break-glass access is reviewed by the practice's compliance officers "
            "or the platform auditors. "
            "If you did not ask support for help, tell your compliance officer.\n"
        )

    mail_enqueue_each_zone(
        people=[account, *_reviewers(grant)],
        subject=f"Break-glass access #{grant.pk} opened on {account.display_name}'s account",
        body=body,
    )


def _reviewers(grant: BreakGlassGrant) -> list[User]:
    """Return whom to tell: the practice's compliance officers who may review the grant, or
    the platform auditors when there are none."""
    candidates = (
        User.objects.filter(is_active=True)
        .exclude(email="")
        .exclude(pk__in=[grant.account_id, grant.agent_id])  # nobody reviews their own
    )
    officers = list(
        candidates.filter(
            practice_id=grant.account.practice_id, groups__name=Role.COMPLIANCE_OFFICER.value
        )
    )
    if officers:
        return officers
    return list(candidates.filter(groups__name=Role.PLATFORM_AUDITOR.value))


def break_glass_active(*, acting_user: User, grant_id: int) -> BreakGlassGrant | None:
    """Return the acting agent's grant if it is still open; record its expiry the first time
    it is not."""
    grant = (
        BreakGlassGrant.objects.select_related("account", "account__practice")
        .filter(pk=grant_id, agent=acting_user)
        .first()
    )
    if grant is None or grant.expiry_recorded_at is not None or not grant.account.is_active:
        return None  # ended, its expiry written, or the account deactivated: over
    if grant.expires_at <= timezone.now():
        break_glass_record_expiry(grant=grant)
        return None
    return grant


@transaction.atomic
def break_glass_record_expiry(*, grant: BreakGlassGrant) -> bool:
    """Write the expiry of a lapsed grant once (from a request or the expiry command)."""
    locked = BreakGlassGrant.objects.select_for_update().get(pk=grant.pk)
    if locked.expiry_recorded_at is not None or locked.expires_at > timezone.now():
        return False
    locked.expiry_recorded_at = timezone.now()
    locked.save(update_fields=["expiry_recorded_at"])
    _record(kinds.BREAK_GLASS_EXPIRED, locked, acting_user=None, ip=None)
    return True


@transaction.atomic
def break_glass_end(*, grant: BreakGlassGrant, acting_user: User, ip: str | None) -> bool:
    """End the agent's own open access now, before its time is up (least privilege: the
    caller is helped). Return whether it ended here; an access already over is left as is.
    """
    _assert_grant_holder(grant, acting_user)
    locked = BreakGlassGrant.objects.select_for_update().get(pk=grant.pk)
    now = timezone.now()
    if locked.expiry_recorded_at is not None or locked.expires_at <= now:
        return False
    locked.expires_at = locked.expiry_recorded_at = now
    locked.save(update_fields=["expires_at", "expiry_recorded_at"])
    _record(kinds.BREAK_GLASS_ENDED, locked, acting_user=acting_user, ip=ip)
    return True


def break_glass_open_locked(*, account: User) -> list[BreakGlassGrant]:
    """Lock and return the access to `account` still open (before any event is written,
    since the grants' own writers lock the grant first and the log after)."""
    grants = list(
        BreakGlassGrant.objects.select_for_update().filter(
            account=account, expiry_recorded_at__isnull=True, expires_at__gt=timezone.now()
        )
    )
    for grant in grants:
        grant.account = account
    return grants


@transaction.atomic
def break_glass_close(*, grants: list[BreakGlassGrant], acting_user: User, ip: str | None) -> None:
    """End `grants` (locked by `break_glass_open_locked`) now: their account was deactivated.

    Nobody is helped on an account that cannot sign in; its access ends with it,
    as its sessions do, and each end is recorded.
    """
    now = timezone.now()
    for grant in grants:
        grant.expires_at = grant.expiry_recorded_at = now
        grant.save(update_fields=["expires_at", "expiry_recorded_at"])
        _record(kinds.BREAK_GLASS_CLOSED, grant, acting_user=acting_user, ip=ip)


def _still_open(grant: BreakGlassGrant, acting_user: User) -> None:
    """Refuse an action under `grant` unless, locked now, it is still open on an active account.

    The page checked it a moment ago; an end, an expiry or a deactivation since then
    (each locks the grant first) is seen here.
    """
    _assert_grant_holder(grant, acting_user)
    locked = (
        BreakGlassGrant.objects.select_for_update(of=("self",))
        .select_related("account")
        .only("expires_at", "expiry_recorded_at", "account__is_active")
        .get(pk=grant.pk)
    )
    if not locked.is_open or not locked.account.is_active:
        raise PermissionDenied(f"break-glass access #{grant.pk} has ended")


def _assert_grant_holder(grant: BreakGlassGrant, acting_user: User) -> None:
    if grant.agent_id != acting_user.pk:
        raise PermissionDenied("only the agent who opened a grant uses it")


@dataclass(frozen=True)
class IdentityDetails:
    name: str
    username: str
    email: str
    practice: str
    doctor_id: int | None
    phones: list[tuple[str, str]]


@transaction.atomic
def break_glass_identity(
    *, grant: BreakGlassGrant, acting_user: User, ip: str | None
) -> IdentityDetails:
    """The details an agent may use to verify a caller another way; viewing them is audited."""
    _still_open(grant, acting_user)
    account = grant.account
    profile = getattr(account, "provider_profile", None) or getattr(account, "staff_profile", None)
    country = account.practice.country if account.practice else default_country()
    phones = [
        (label, phone_display(getattr(profile, field), country=country))
        for field, label in (
            ("office_phone", "Office phone"),
            ("cell_phone", "Cell phone"),
            ("home_phone", "Home phone"),
        )
        if profile is not None and getattr(profile, field, None)
    ]
    _record(kinds.BREAK_GLASS_IDENTITY_VIEWED, grant, acting_user=acting_user, ip=ip)
    provider = getattr(account, "provider_profile", None)
    return IdentityDetails(
        name=account.display_name,
        username=account.username,
        email=account.email,
        practice=account.practice.name if account.practice else "",
        doctor_id=provider.doctor_id if provider else None,
        phones=phones,
    )


@transaction.atomic
def break_glass_rotate_pin(*, grant: BreakGlassGrant, acting_user: User, ip: str | None) -> None:
    """Replace the account's Support PIN and tell the owner by email (never the PIN itself)."""
    _still_open(grant, acting_user)
    support_pin_generate(account=grant.account, acting_user=acting_user, ip=ip)
    _record(kinds.BREAK_GLASS_PIN_ROTATED, grant, acting_user=acting_user, ip=ip)
    account = grant.account
    if account.email:
        mail_enqueue(
            subject="Your Support PIN was replaced",
            body=(
                f"Hello {account.display_name},\n\nDuring break-glass access #{grant.pk}, "
                "support replaced your Support PIN. View the new one under your account "
                "settings before you call support again.\n"
            ),
            recipients=[account.email],
        )


# The outcomes a reviewer chooses from (UNRECORDED only marks reviews from before outcomes).
REVIEW_OUTCOMES = (ReviewOutcome.JUSTIFIED, ReviewOutcome.NOT_JUSTIFIED)


def break_glass_review_refused(grant: BreakGlassGrant) -> ValidationError:
    """Return the refusal of a review of access that is still open (said by the view too)."""
    return ValidationError(
        f"Break-glass access #{grant.pk} is still open: review it once it has ended.",
        code="open",
    )


@transaction.atomic
def break_glass_review(
    *, grant: BreakGlassGrant, acting_user: User, outcome: str, note: str, ip: str | None
) -> BreakGlassGrant:
    """Record `acting_user`'s review of a grant that has ended: an outcome and a note, once.

    Refused while the grant is open (what it was used for is not known yet) and
    once someone has reviewed it. Its expiry is recorded first if nobody had yet,
    so the log reads opened, used, expired, reviewed.
    """
    if not can_review_break_glass(acting_user, grant):
        raise PermissionDenied(
            "only platform auditors and the account's practice's compliance officers review it, "
            "never on their own account or a grant they opened"
        )
    if outcome not in REVIEW_OUTCOMES:
        raise ValidationError("Choose whether the access was justified.", code="outcome")
    note = " ".join(note.split())
    if len(note) < conf.MIN_REVIEW_NOTE:
        raise ValidationError(
            f"Write at least {conf.MIN_REVIEW_NOTE} characters on what you checked.", code="note"
        )
    locked = (  # the grant's row only: the account's is for its own writers (no_key)
        BreakGlassGrant.objects.select_for_update(of=("self",))
        .select_related("account")
        .get(pk=grant.pk)
    )
    if locked.reviewed_at is not None:
        raise ValidationError(
            f"Break-glass access #{locked.pk} was already reviewed.", code="reviewed"
        )
    if locked.is_open:
        raise break_glass_review_refused(locked)
    if locked.expiry_recorded_at is None:
        break_glass_record_expiry(grant=locked)
        locked.refresh_from_db()
    locked.reviewed_by, locked.reviewed_at = acting_user, timezone.now()
    locked.review_outcome, locked.review_note = ReviewOutcome(outcome), note
    locked.full_clean()
    locked.save(update_fields=["reviewed_by", "reviewed_at", "review_outcome", "review_note"])
    _record(
        kinds.BREAK_GLASS_REVIEWED,
        locked,
        acting_user=acting_user,
        ip=ip,
        outcome=locked.review_outcome.label,
        note=note[:500],
    )
    return locked
