"""Who may do what: every role's permissions and every object rule, in one place.

Views ask these functions (and services assert the invariants that must never
break); templates only mirror their answers. The matrix test in
tests/security/test_access_matrix.py checks every URL against them for every role.
"""

from enum import Enum
from functools import wraps

from django.core.exceptions import PermissionDenied

from accounts.models import User
from accounts.roles import Role

# Accounts and profiles


def can_use_account_settings(user: User) -> bool:
    """Providers edit their own Account Settings."""
    return user.is_authenticated and user.is_provider and hasattr(user, "provider_profile")


def can_use_staff_account(user: User) -> bool:
    """Everyone who is not a provider edits their own Staff Account Information."""
    return user.is_authenticated and not user.is_provider and hasattr(user, "staff_profile")


def can_view_profile_images(viewer: User, owner: User) -> bool:
    """A provider's images are seen by the provider and the signed-in members of the practice."""
    if not viewer.is_authenticated:
        return False
    if viewer.pk == owner.pk:
        return True
    return viewer.practice_id is not None and viewer.practice_id == owner.practice_id


def can_administer_platform(user: User) -> bool:
    """The platform's administrators (superusers) change accounts, practices and the
    specialty list in the Django admin, through the services that audit each change."""
    return user.is_authenticated and user.is_active and user.is_superuser


def can_manage_practice_staff(user: User) -> bool:
    """Practice admins see their practice's accounts; superusers use the Django admin."""
    return (
        user.is_authenticated
        and user.is_active
        and user.practice_id is not None
        and user.has_role(Role.PRACTICE_ADMIN)
    )


def can_unlock_sign_in(actor: User, account: User) -> bool:
    """Superusers unlock anyone; practice admins unlock the other members of their practice."""
    if not actor.is_authenticated or not actor.is_active:
        return False
    if actor.is_superuser:
        return True
    return (
        can_manage_practice_staff(actor)
        and account.pk != actor.pk
        and account.practice_id == actor.practice_id
    )


# Roles a practice admin may give: staff roles of the practice. Providers are created
# with a Doctor ID by the platform, and platform roles are not the practice's to give.
ASSIGNABLE_ROLES = (
    Role.NURSE,
    Role.SCHEDULER,
    Role.BILLING,
    Role.PRACTICE_ADMIN,
    Role.COMPLIANCE_OFFICER,
)


def can_manage_account(actor: User, account: User) -> bool:
    """Deactivate, reactivate, change roles: practice admins for the others of their practice."""
    return can_unlock_sign_in(actor, account)


# The audit log


class AuditScope(Enum):
    ALL = "all"  # platform auditors
    PRACTICE = "practice"  # compliance officers: their practice
    OWN_ACCOUNT = "own"  # providers and staff: events about their own account


def audit_scope(user: User) -> AuditScope | None:
    """Return how much of the log `user` may read, or None for nothing."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.has_role(Role.PLATFORM_AUDITOR):
        return AuditScope.ALL
    if user.has_role(Role.COMPLIANCE_OFFICER) and user.practice_id is not None:
        return AuditScope.PRACTICE
    if user.has_role(Role.SUPPORT_AGENT):
        return None  # agents work across practices and must not read their logs
    if user.practice_id is not None:
        return AuditScope.OWN_ACCOUNT
    return None


# PINs and the support console


def can_read_audit_log(user: User) -> bool:
    return audit_scope(user) is not None


def can_view_outbox(user: User) -> bool:
    """Platform auditors see what waits to leave the system (it spans every practice)."""
    return audit_scope(user) is AuditScope.ALL


def can_export_audit_evidence(user: User) -> bool:
    """Whole chains only: those who read a whole practice's log, or all of it."""
    return audit_scope(user) in {AuditScope.ALL, AuditScope.PRACTICE}


def can_choose_audit_practice(user: User) -> bool:
    """Platform auditors narrow the report and the dashboard to any one practice."""
    return audit_scope(user) is AuditScope.ALL


def can_view_audit_dashboard(user: User) -> bool:
    """The compliance dashboard: its officers for their practice, platform auditors for all."""
    return audit_scope(user) in {AuditScope.ALL, AuditScope.PRACTICE}


def can_review_audit_subjects(user: User) -> bool:
    """The history of one account or patient: compliance officers (their practice's) and
    platform auditors (everyone's); the object rules are `audit.selectors.audit_subject_*`."""
    return audit_scope(user) in {AuditScope.ALL, AuditScope.PRACTICE}


def can_verify_audit_log(user: User) -> bool:
    """The log's integrity on screen, and asking for a verification: the same people."""
    return can_export_audit_evidence(user)


# Alerts (alerts/)


def can_view_alerts(user: User) -> bool:
    """Alerts: compliance officers (their practice's) and platform auditors (all)."""
    return audit_scope(user) in {AuditScope.ALL, AuditScope.PRACTICE}


def can_see_alert(user: User, alert) -> bool:
    """Platform auditors see every alert; compliance officers those of their own practice.

    An alert of no practice (a platform's: the log's integrity, the audit
    stream, an agent tried several practices' accounts) is the auditors' only.
    """
    scope = audit_scope(user)
    if scope is AuditScope.ALL:
        return True
    return (
        scope is AuditScope.PRACTICE
        and alert.practice_id is not None
        and alert.practice_id == user.practice_id
    )


def can_acknowledge_alert(user: User, alert) -> bool:
    """Those who see an alert acknowledge it, except one about their own account."""
    return can_see_alert(user, alert) and alert.subject_id != user.pk


def can_manage_own_pins(user: User) -> bool:
    """Every signed-in account views and changes its own PINs."""
    return user.is_authenticated and user.is_active and hasattr(user, "pins")


def can_use_support_console(user: User) -> bool:
    """Support agents validate callers' PINs; they never see one."""
    return user.is_authenticated and user.is_active and user.has_role(Role.SUPPORT_AGENT)


def can_validate_pin_of(agent: User, account: User) -> bool:
    """An agent validates callers' PINs, never its own (it could simply view it)."""
    return can_use_support_console(agent) and agent.pk != account.pk


# Break-glass access


def can_open_break_glass(agent: User, account: User) -> bool:
    """Support agents open break-glass access to a practice member's account, never their own.

    Accounts without a practice (support agents, platform auditors) are the
    platform's own people: their identity is verified inside the platform, not
    through a path that shows an account's identity details to a colleague, and
    no practice's compliance officer oversees them.
    """
    return (
        can_use_support_console(agent)
        and account.pk != agent.pk
        and account.practice_id is not None
        and account.is_active
    )


def can_review_break_glass(reviewer: User, grant) -> bool:
    """Platform auditors review every break-glass access; compliance officers their practice's.

    Nobody reviews an access to their own account or one they opened. The
    auditors are the platform's oversight of its support agents, so every grant
    has a reviewer even when its practice has no other compliance officer;
    reviewing records that someone looked and changes no account, PIN or
    health information, which keeps the auditor read-only everywhere else.
    """
    if not reviewer.is_authenticated or not reviewer.is_active:
        return False
    if reviewer.pk in (grant.account_id, grant.agent_id):
        return False
    if reviewer.has_role(Role.PLATFORM_AUDITOR):
        return True
    return (
        reviewer.has_role(Role.COMPLIANCE_OFFICER)
        and reviewer.practice_id is not None
        and reviewer.practice_id == grant.account.practice_id
    )


def allowed_only(check):
    """Decorate a view: refuse (403) whoever `check` refuses, before anything else is asked.

    Placed above `recent_auth_required`, so a user who may not use a page is
    refused at once instead of being asked to confirm their password first.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
