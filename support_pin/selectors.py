"""Reads for the support console: finding an account, its validation state."""

from datetime import datetime

from django.db.models import Q, QuerySet

from accounts.models import User
from support_pin import conf
from support_pin.models import AccountPins


def console_account_search(*, query: str) -> list[User]:
    """Return accounts matching a username, an email, a Doctor ID or a name.

    Exact for username, email and Doctor ID; for names every word must begin a
    first or last name. Only what the console shows is loaded: name,
    username, practice.
    """
    text = query.strip()
    if not text:
        return []
    condition = Q(username__iexact=text) | Q(email__iexact=text)
    if text.isascii() and text.isdigit() and len(text) <= 10:
        condition |= Q(provider_profile__doctor_id=int(text))
    words = text.split()[:4]
    if words and all(len(word) >= 2 for word in words):
        name = Q()
        for word in words:
            name &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
        condition |= name
    return list(
        _console_users()
        .filter(condition)
        .order_by("last_name", "first_name", "username")
        .distinct()[: conf.CONSOLE_RESULTS]
    )


def console_account(*, account_id: int) -> User | None:
    """Return the account `account_id` names, if the console may show it (else None)."""
    try:  # by primary key: first() would add an ORDER BY for nothing
        return _console_users().get(pk=account_id)
    except User.DoesNotExist:
        return None


def _console_users() -> QuerySet[User]:
    return (
        User.objects.filter(is_active=True, pins__isnull=False)
        .select_related("practice", "provider_profile")
        .only(
            "id",
            "username",
            "first_name",
            "last_name",
            "practice__name",
            "provider_profile__doctor_id",
        )
    )


def validation_state(*, account: User) -> tuple[datetime | None, bool]:
    """Return until when validation is locked for `account` (None when it is not), and
    whether it is blocked until the owner generates a new PIN."""
    found = (
        AccountPins.objects.filter(user_id=account.pk)
        .values_list("validation_locked_until", "validation_blocked_at")
        .first()
    )
    if found is None:
        return None, False
    locked_until, blocked_at = found
    return locked_until, blocked_at is not None
