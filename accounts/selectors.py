"""Reads for the account pages."""

from django.shortcuts import get_object_or_404

from accounts.models import ProviderProfile, User


def provider_profile_for_page(*, user: User) -> ProviderProfile:
    """Return the user's profile with what the Profile tab shows, in one query."""
    return (
        ProviderProfile.objects.select_related("user", "user__practice")
        .prefetch_related("specialties")
        .get(user=user)
    )


def provider_profile_by_user_id(*, user_id: int) -> ProviderProfile:
    return get_object_or_404(ProviderProfile.objects.select_related("user"), user_id=user_id)
