"""Reads for the account pages."""

from dataclasses import dataclass

from django.shortcuts import get_object_or_404

from accounts.lockout import locked_usernames
from accounts.models import ProviderProfile, User
from accounts.roles import Role


def provider_profile_for_page(*, user: User) -> ProviderProfile:
    """Return the user's profile with what the Profile tab shows, in one query."""
    return (
        ProviderProfile.objects.select_related("user", "user__practice")
        .prefetch_related("specialties")
        .get(user=user)
    )


def provider_profile_by_user_id(*, user_id: int) -> ProviderProfile:
    return get_object_or_404(ProviderProfile.objects.select_related("user"), user_id=user_id)


@dataclass(frozen=True)
class StaffRow:
    user: User
    roles: list[str]
    locked: bool


def practice_staff(*, practice_id: int) -> list[StaffRow]:
    """Return the practice's accounts with their roles and sign-in lock state, in 3 queries."""
    users = list(
        User.objects.filter(practice_id=practice_id)
        .prefetch_related("groups")
        .order_by("last_name", "first_name", "username")
    )
    locked = locked_usernames([u.username for u in users])
    return [
        StaffRow(
            user=u,
            roles=sorted(Role(g.name).label for g in u.groups.all()),
            locked=u.username in locked,
        )
        for u in users
    ]
