"""Who may do what with accounts and profiles. Views ask these; templates only mirror them."""

from accounts.models import User
from accounts.roles import Role


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
