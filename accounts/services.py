"""Everything that writes accounts, practices and profiles."""

from collections.abc import Iterable
from typing import Any

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction

from accounts.auth_events import sessions_end_all
from accounts.models import Practice, ProviderProfile, Specialty, StaffProfile, User, UserSession
from accounts.roles import PLATFORM_ROLES, PRACTICE_ROLES, Role
from accounts.validators import validate_time_zone
from audit import kinds
from audit.services import audit_event_record
from break_glass.services import break_glass_close, break_glass_open_locked
from ehr.policies import (
    ASSIGNABLE_ROLES,
    can_administer_platform,
    can_manage_account,
    can_manage_practice_staff,
    can_unlock_sign_in,
)
from outbox.services import mail_enqueue
from support_pin.services import account_pins_create


@transaction.atomic
def practice_create(
    *,
    name: str,
    group_id: int,
    country: str | None = None,
    acting_user: User | None,
    ip: str | None = None,
) -> Practice:
    """Create a practice, audited in its own chain; `country` (ISO 3166-1, e.g. "GB")
    defaults to PHONE_REGION. `acting_user` None, said by the caller: the platform's own
    set-up (demo data, the benchmark's practices)."""
    if acting_user is not None and not can_administer_platform(acting_user):
        raise PermissionDenied("only platform administrators create practices")
    practice = Practice(name=name, group_id=group_id)
    if country:
        practice.country = country
    practice.full_clean()
    practice.save()
    audit_event_record(
        kind=kinds.PRACTICE_CREATED,
        acting_user=acting_user,
        ip=ip,
        practice=practice,
        params={"practice": practice.name, "group_id": practice.group_id},
    )
    return practice


# What a platform administrator changes of a practice, and how the log names each.
PRACTICE_EDITABLE = {"name": "name", "group_id": "Group ID", "country": "country"}


@transaction.atomic
def practice_update(
    *, practice: Practice, changes: dict[str, Any], acting_user: User, ip: str | None
) -> None:
    """Change a practice's name, Group ID or country, with the old and new values in the log.

    The Group ID is on every member's profile and the country decides how their
    phone numbers read: a change to either is a change to what the practice's people
    see, and its compliance officers read it in their own log.
    """
    if not can_administer_platform(acting_user):
        raise PermissionDenied("only platform administrators change practices")
    unknown = set(changes) - set(PRACTICE_EDITABLE)
    if unknown:
        raise PermissionDenied(f"not changed here: {', '.join(sorted(unknown))}")
    changed = {
        name: (getattr(practice, name), value)
        for name, value in changes.items()
        if getattr(practice, name) != value
    }
    if not changed:
        return
    for name, (_old, new) in changed.items():
        setattr(practice, name, new)
    practice.full_clean()
    practice.save(update_fields=list(changed))
    audit_event_record(
        kind=kinds.PRACTICE_UPDATED,
        acting_user=acting_user,
        ip=ip,
        practice=practice,
        params={
            "practice": practice.name,
            "changes": "; ".join(
                f"{PRACTICE_EDITABLE[name]} changed from {old} to {new}"
                for name, (old, new) in changed.items()
            ),
        },
        data={"fields": ", ".join(changed)},
    )


@transaction.atomic
def specialty_add(*, name: str, acting_user: User, ip: str | None) -> Specialty:
    """Add a specialty to the list providers choose from."""
    if not can_administer_platform(acting_user):
        raise PermissionDenied("only platform administrators change the specialty list")
    specialty = Specialty(name=name)
    specialty.full_clean()
    specialty.save()
    audit_event_record(
        kind=kinds.SPECIALTY_ADDED,
        acting_user=acting_user,
        ip=ip,
        params={"specialty": specialty.name},
        data={"specialty": specialty.pk},
    )
    return specialty


@transaction.atomic
def specialty_rename(*, specialty: Specialty, name: str, acting_user: User, ip: str | None) -> None:
    """Rename a specialty: every provider who lists it reads the new name on their profile.

    Never deleted: that would take it off those profiles unseen; a specialty misspelt
    is renamed.
    """
    if not can_administer_platform(acting_user):
        raise PermissionDenied("only platform administrators change the specialty list")
    old = specialty.name
    if name == old:
        return
    specialty.name = name
    specialty.full_clean()
    specialty.save(update_fields=["name"])
    audit_event_record(
        kind=kinds.SPECIALTY_RENAMED,
        acting_user=acting_user,
        ip=ip,
        params={"old": old, "new": name},
        data={"specialty": specialty.pk},
    )


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    password: str | None,
    first_name: str,
    last_name: str,
    role: Role,
    practice: Practice | None,
    doctor_id: int | None = None,
    time_zone: str | None = None,
    acting_user: User | None,
    ip: str | None = None,
) -> User:
    """Create an account with its role and its profile, in one transaction.

    Providers get the Account Settings profile and must have a Doctor ID; every
    other role gets Staff Account Information. Practice roles need a practice;
    platform roles (support agents, auditors) must not have one.
    """
    role = Role(role)
    if role in PRACTICE_ROLES and practice is None:
        raise ValidationError(f"A {role.label.lower()} must belong to a practice.")
    if role in PLATFORM_ROLES and practice is not None:
        raise ValidationError(f"A {role.label.lower()} does not belong to a practice.")
    if (role == Role.PROVIDER) != (doctor_id is not None):
        raise ValidationError("A Doctor ID is given to providers, and only to them.")

    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        practice=practice,
    )
    if time_zone:
        user.time_zone = time_zone
    if password is None:
        user.set_unusable_password()  # the person sets one from the emailed link
    else:
        user.set_password(password)
    user.full_clean()  # the username, the email and their case-insensitive uniqueness
    user.save()
    user.groups.add(Group.objects.get(name=role.value))
    if role == Role.PROVIDER:
        ProviderProfile.objects.create(user=user, doctor_id=doctor_id)
    else:
        StaffProfile.objects.create(user=user)
    account_pins_create(user=user)
    # The role given, as a later change of role records the old and the new one.
    audit_event_record(
        kind=kinds.ACCOUNT_CREATED,
        acting_user=acting_user,
        account=user,
        ip=ip,
        params={"role": role.value},
        data={"role": role.value},
    )
    return user


@transaction.atomic
def platform_administrator_create(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    role: Role = Role.PLATFORM_AUDITOR,
    operator: str,
) -> User:
    """Create a platform administrator (a superuser) from the operator's console.

    `operator` names who ran it (their login on the server, `pat@ehr-app-1`): the log's
    only account of who made the administrator, no one being signed in.

    The one way to one: the admin shows superuser status read-only. The account is
    made as any other (`user_create`: its role, profile and PINs), holds a platform
    role, and its administration is recorded beside its creation. It reaches the
    admin only once it has a second factor (`accounts.middleware`).
    """
    role = Role(role)
    if role not in PLATFORM_ROLES:
        raise ValidationError("A platform administrator holds a platform role.")
    candidate = User(username=username, email=email, first_name=first_name, last_name=last_name)
    validate_password(password, user=candidate)
    user = user_create(
        username=username,
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        role=role,
        practice=None,
        acting_user=None,
    )
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    audit_event_record(
        kind=kinds.PLATFORM_ADMINISTRATOR_GRANTED,
        acting_user=None,
        account=user,
        ip=None,
        data={"operator": operator[:200], "via": "manage.py createsuperuser"},
    )
    return user


@transaction.atomic
def user_password_change(
    *,
    account: User,
    acting_user: User,
    new_password: str,
    ip: str | None,
    keep_session_key: str | None = None,
) -> None:
    """Set a new password (already validated by the form), record it, and sign out the
    account's sessions but the one whose key is `keep_session_key`."""
    account.set_password(new_password)
    account.save(update_fields=["password"])
    audit_event_record(kind=kinds.PASSWORD_CHANGED, acting_user=acting_user, account=account, ip=ip)
    sessions_end_all(
        account=account,
        acting_user=acting_user,
        ip=ip,
        keep_session_key=keep_session_key,
        reason=UserSession.EndReason.PASSWORD_CHANGED,
    )


def _replace_image(
    profile: ProviderProfile,
    field: str,
    value: ContentFile | bool | None,
    written: list[tuple[Storage, str]],
) -> None:
    """Store a new image (or clear it) and delete the old file once the change commits.

    Storage writes at once, not with the transaction: the new file is added to
    `written`, for the caller to delete if the change does not commit.
    """
    if value is None:
        return
    old = getattr(profile, field)
    old_name = old.name if old else ""
    if value is False:
        setattr(profile, field, "")
    else:
        new = getattr(profile, field)
        new.save(value.name, value, save=False)
        written.append((new.storage, new.name))
    if old_name:
        storage = old.storage
        transaction.on_commit(lambda: storage.delete(old_name))


def provider_profile_update(
    *, profile: ProviderProfile, acting_user: User, changes: dict[str, Any], ip: str | None
) -> ProviderProfile:
    """Apply the Profile tab's cleaned values to a provider's profile.

    A picture or logo stored for a change that then fails (its event refused, a value
    invalid) is deleted again: no provider's photo stays on disk that no profile shows
    and no event recorded.
    """
    written: list[tuple[Storage, str]] = []
    try:
        with transaction.atomic():
            return _provider_profile_save(
                profile=profile, acting_user=acting_user, changes=changes, ip=ip, written=written
            )
    except BaseException:
        for storage, name in written:
            storage.delete(name)
        raise


def _provider_profile_save(
    *,
    profile: ProviderProfile,
    acting_user: User,
    changes: dict[str, Any],
    ip: str | None,
    written: list[tuple[Storage, str]],
) -> ProviderProfile:
    profile = ProviderProfile.objects.select_for_update().get(pk=profile.pk)
    user = profile.user
    if "time_zone" in changes:
        validate_time_zone(changes["time_zone"])
        user.time_zone = changes["time_zone"]
        user.save(update_fields=["time_zone"])
    for field in (
        "job_title",
        "salutation",
        "suffix",
        "website",
        "home_phone",
        "office_phone",
        "cell_phone",
        "display_logo_on_faxes",
    ):
        if field in changes:
            setattr(profile, field, changes[field] if changes[field] is not None else "")
    for field in ("profile_picture", "business_logo"):
        _replace_image(profile, field, changes.get(field), written)
    profile.full_clean(exclude=["user", "specialties"])
    profile.save()
    if "specialties" in changes:
        specialties: Iterable[Specialty] = changes["specialties"]
        profile.specialties.set(specialties)
    audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=acting_user, account=user, ip=ip)
    return profile


@transaction.atomic
def staff_profile_update(
    *, account: User, acting_user: User, changes: dict[str, Any], ip: str | None
) -> StaffProfile:
    """Apply Staff Account Information's cleaned values."""
    user = account
    profile = StaffProfile.objects.select_for_update().get(user=user)
    if "email" in changes and changes["email"] != user.email:
        user.email = changes["email"]
        user.full_clean()
        user.save(update_fields=["email"])
    if "time_zone" in changes and changes["time_zone"] != user.time_zone:
        validate_time_zone(changes["time_zone"])
        user.time_zone = changes["time_zone"]
        user.save(update_fields=["time_zone"])
    for field in ("home_phone", "cell_phone"):
        if field in changes:
            setattr(profile, field, changes[field] if changes[field] is not None else "")
    profile.full_clean(exclude=["user"])
    profile.save()
    audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=acting_user, account=user, ip=ip)
    return profile


@transaction.atomic
def sign_in_unlock(*, account: User, acting_user: User, ip: str | None) -> int:
    """Clear the sign-in lockout of `account`; return how many attempt records went."""
    if not can_unlock_sign_in(acting_user, account):
        raise PermissionDenied("not allowed to unlock this account")
    cleared = axes_reset(username=account.get_username())
    audit_event_record(kind=kinds.SIGN_IN_UNLOCKED, acting_user=acting_user, account=account, ip=ip)
    return cleared


@transaction.atomic
def user_set_active(*, account: User, active: bool, acting_user: User, ip: str | None) -> None:
    """Deactivate (ending every session and break-glass access at once) or reactivate an account."""
    if not can_manage_account(acting_user, account):
        raise PermissionDenied("not allowed to manage this account")
    # The row locked first: break-glass access opening at the same moment waits for it.
    # (NO KEY UPDATE: events that name the account still insert meanwhile.)
    if (
        User.objects.select_for_update(no_key=True)
        .values_list("is_active", flat=True)
        .get(pk=account.pk)
        == active
    ):
        account.is_active = active
        return
    # Open break-glass access is locked before the first event, as its own writers lock it.
    grants = [] if active else break_glass_open_locked(account=account)
    account.is_active = active
    account.save(update_fields=["is_active"])
    if not active:
        sessions_end_all(
            account=account,
            acting_user=acting_user,
            ip=ip,
            reason=UserSession.EndReason.DEACTIVATED,
        )
    kind = kinds.ACCOUNT_REACTIVATED if active else kinds.ACCOUNT_DEACTIVATED
    audit_event_record(kind=kind, acting_user=acting_user, account=account, ip=ip)
    break_glass_close(grants=grants, acting_user=acting_user, ip=ip)  # after the event saying why


def roles_validate(*, roles: Iterable[str], practice: Practice | None, was_provider: bool) -> None:
    """Refuse roles an account cannot hold: as `user_create` gives them, one kind at a time.

    Practice roles need a practice and platform roles none; a provider stays a
    provider (the account carries a Doctor ID) and no one else becomes one.
    """
    try:
        chosen = {Role(name) for name in roles}
    except ValueError:
        raise ValidationError("Choose roles from the list.") from None
    if chosen & PRACTICE_ROLES and practice is None:
        raise ValidationError("Practice roles need a practice: choose the account's practice.")
    if chosen & PLATFORM_ROLES and practice is not None:
        raise ValidationError("Support agents and platform auditors belong to no practice.")
    if (Role.PROVIDER in chosen) != was_provider:
        raise ValidationError(
            "Providers keep their role, and no one else takes it: a provider's account "
            "carries a Doctor ID."
        )


# What a platform administrator may change on an account in the Django admin; the rest
# (password, superuser status, permissions) is never changed there.
ADMIN_EDITABLE = ("username", "first_name", "last_name", "email", "practice", "time_zone")


@transaction.atomic
def user_admin_update(
    *,
    account: User,
    changes: dict[str, Any],
    active: bool,
    roles: Iterable[str],
    acting_user: User,
    ip: str | None,
) -> None:
    """Save what a platform administrator changed in the Django admin, each change audited.

    The admin is a form over the model; this is its one way into the account, so
    that a role given, an account deactivated (its sessions ended) or a name
    changed there lands in the log like the same change made anywhere else.
    """
    if not can_administer_platform(acting_user):
        raise PermissionDenied("only platform administrators change accounts in the admin")
    unknown = set(changes) - set(ADMIN_EDITABLE)
    if unknown:
        raise PermissionDenied(f"not changed in the admin: {', '.join(sorted(unknown))}")
    # Lock what user_set_active will lock, before the first event takes the chain: the
    # account's row, and its open break-glass access when it is deactivated here.
    User.objects.select_for_update(no_key=True).filter(pk=account.pk).values_list("pk").get()
    if not active:
        break_glass_open_locked(account=account)
    changed = [name for name, value in changes.items() if getattr(account, name) != value]
    old, new = sorted(account.roles), sorted(set(roles))
    old_username, old_practice = account.username, account.practice
    if changed:
        for name in changed:
            setattr(account, name, changes[name])
        if "practice" in changed:
            # The roles kept must suit the practice moved to (or its absence).
            roles_validate(roles=new, practice=account.practice, was_provider=account.is_provider)
        account.full_clean(exclude=["password"])
        account.save(update_fields=[*changed])
        fields = [name for name in changed if name != "practice"]
        if fields:
            audit_event_record(
                kind=kinds.PROFILE_UPDATED,
                acting_user=acting_user,
                account=account,
                ip=ip,
                data={"fields": ", ".join(fields)},
            )
        if "username" in changed:
            # Sign-in failures are counted by username: they go with the account to its
            # new name, or the rename would lift a lock with nothing recorded.
            AccessAttempt.objects.filter(username__iexact=old_username).update(
                username=account.username
            )
        if "practice" in changed:
            _practice_move_record(account=account, old=old_practice, acting_user=acting_user, ip=ip)
    if old != new:
        roles_validate(roles=new, practice=account.practice, was_provider=account.is_provider)
        account.groups.set(Group.objects.filter(name__in=new))
        _role_change_record(account=account, old=old, new=new, acting_user=acting_user, ip=ip)
    user_set_active(account=account, active=active, acting_user=acting_user, ip=ip)


def _practice_move_record(
    *, account: User, old: Practice | None, acting_user: User, ip: str | None
) -> None:
    """Record a move in the log of the practice left and of the one joined, and end the
    account's sessions: what it may see is another practice's from now on."""
    params = {
        "old": old.name if old else "none",
        "new": account.practice.name if account.practice else "none",
    }
    data = {"old_practice": old.pk if old else None, "new_practice": account.practice_id}
    # Each practice's compliance officers read only their own practice's chain.
    for practice in [p for p in (old, account.practice) if p is not None]:
        audit_event_record(
            kind=kinds.ACCOUNT_PRACTICE_CHANGED,
            acting_user=acting_user,
            account=account,
            practice=practice,
            ip=ip,
            params=params,
            data=data,
        )
    sessions_end_all(account=account, acting_user=acting_user, ip=ip)


@transaction.atomic
def user_role_change(*, account: User, role: Role, acting_user: User, ip: str | None) -> None:
    """Give a staff member of the practice another staff role."""
    role = Role(role)
    if not can_manage_account(acting_user, account) or role not in ASSIGNABLE_ROLES:
        raise PermissionDenied("not allowed to give this role to this account")
    if account.is_provider:
        raise ValidationError("Providers keep their role; their accounts carry a Doctor ID.")
    old = sorted(account.roles)
    account.groups.set([Group.objects.get(name=role.value)])
    if old != [role.value]:
        _role_change_record(
            account=account, old=old, new=[role.value], acting_user=acting_user, ip=ip
        )


def _role_change_record(
    *, account: User, old: list[str], new: list[str], acting_user: User, ip: str | None
) -> None:
    """Record a change of roles; its data carries them too, for the rules that read them
    (`alerts.rules.officer_named_findings`)."""
    before, after = ", ".join(old), ", ".join(new)
    audit_event_record(
        kind=kinds.ROLE_CHANGED,
        acting_user=acting_user,
        account=account,
        ip=ip,
        params={"old": before or "none", "new": after or "none"},
        data={"old": before, "new": after},
    )


@transaction.atomic
def staff_account_create(
    *,
    acting_user: User,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    role: Role,
    ip: str | None,
    set_password_url,
) -> User:
    """A practice admin adds a staff member, who is emailed a link to choose a password."""
    role = Role(role)
    if not can_manage_practice_staff(acting_user) or role not in ASSIGNABLE_ROLES:
        raise PermissionDenied("not allowed to create this account")
    user = user_create(
        username=username,
        email=email,
        password=None,
        first_name=first_name,
        last_name=last_name,
        role=role,
        practice=acting_user.practice,
        acting_user=acting_user,
        ip=ip,
    )
    link = set_password_url(user)
    mail_enqueue(
        subject="Your EHR account",
        body=(
            f"Hello {user.display_name},\n\n{acting_user.display_name} created an account "
            f"for you (username {user.username}). Choose your password here; the link works "
            f"once and expires in a few days:\n\n{link}\n"
        ),
        recipients=[user.email],
    )
    return user
