"""Reads for the account pages."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from accounts.images import IMAGE_FIELDS, image_version
from accounts.lockout import locked_usernames
from accounts.models import Practice, ProviderProfile, User, UserSession
from accounts.roles import Role


def provider_profile_for_page(*, user: User) -> ProviderProfile:
    """Return the user's profile with what the Profile tab shows, in two queries (the
    profile with its user and practice, then its specialties)."""
    return (
        ProviderProfile.objects.select_related("user", "user__practice")
        .prefetch_related("specialties")
        .get(user=user)
    )


def provider_profile_by_user_id(*, user_id: int) -> ProviderProfile:
    return get_object_or_404(ProviderProfile.objects.select_related("user"), user_id=user_id)


def profile_image_urls(*, profile: ProviderProfile) -> dict[str, str]:
    """Return the URL of each image the profile has, by kind ("picture", "logo").

    The URL names the stored image (accounts.images.image_version), so it changes
    when the image does.
    """
    urls = {}
    for kind, field in IMAGE_FIELDS.items():
        image = getattr(profile, field)
        if image:
            kwargs = {
                "user_id": profile.user_id,
                "kind": kind,
                "version": image_version(image.name),
            }
            urls[kind] = reverse("profile_image", kwargs=kwargs)
    return urls


@dataclass(frozen=True)
class StaffRow:
    user: User
    roles: list[str]  # labels, for the page
    is_provider: bool
    locked: bool
    pin_validation_blocked: bool
    pin_validation_locked_until: datetime | None  # the lock after wrong PINs, while it lasts


STAFF_ROW_FIELDS = (
    "id",
    "username",
    "first_name",
    "last_name",
    "is_active",
    "practice_id",
    "pins__validation_blocked_at",
    "pins__validation_locked_until",
)


def practice_staff(*, practice_id: int) -> list[StaffRow]:
    """Return the practice's accounts with their roles and sign-in lock state, in 4 queries
    (the accounts, their roles, and the two sign-in locks)."""
    users = list(
        User.objects.filter(practice_id=practice_id)
        .select_related("pins")
        .only(*STAFF_ROW_FIELDS)
        .prefetch_related("groups")
        .order_by("last_name", "first_name", "username")
    )
    locked = locked_usernames([u.username for u in users])
    now = timezone.now()
    return [
        StaffRow(
            user=u,
            roles=sorted(Role(g.name).label for g in u.groups.all()),
            is_provider=any(g.name == Role.PROVIDER.value for g in u.groups.all()),
            locked=u.username in locked,
            pin_validation_blocked=u.pins.validation_blocked_at is not None,
            pin_validation_locked_until=(
                u.pins.validation_locked_until
                if u.pins.validation_locked_until and u.pins.validation_locked_until > now
                else None
            ),
        )
        for u in users
    ]


@dataclass(frozen=True)
class SessionRow:
    id: str  # the stored (hashed) key: identifies the row, opens nothing
    browser: str
    ip: str
    last_seen: datetime
    current: bool


def active_sessions(*, account: User, current_key: str | None) -> list[SessionRow]:
    """Return the account's live signed-in sessions for the Security tab, newest activity first."""
    rows = UserSession.objects.filter(
        user=account, ended_at__isnull=True, expire_date__gt=timezone.now()
    ).order_by("-last_seen_at")
    return [
        SessionRow(
            id=row.session_key,
            browser=browser_summary(row.user_agent),
            ip=row.ip or "None",
            last_seen=row.last_seen_at,
            current=row.session_key == current_key,
        )
        for row in rows.only("session_key", "user_agent", "ip", "last_seen_at")
    ]


_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def browser_summary(user_agent: str) -> str:
    """`Chrome on Windows` from a User-Agent string.

    Written here rather than with a parsing library: the maintained ones carry large
    rule files, and the Security tab needs only the browser family and the system.
    """
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), "Unknown browser")
    system = next((name for token, name in _SYSTEMS if token in ua), "unknown system")
    return f"{browser} on {system}"


PRACTICE_SEARCH_LIMIT = 20  # suggestions a practice box offers: type more to narrow them
PRACTICE_NAME_LENGTH = Practice._meta.get_field("name").max_length


def is_group_id(text: str) -> bool:
    """Say whether `text` is written as a Group ID: ASCII digits only, not superscripts or
    full-width digits (which `int()` would read, and no suggestion ever shows)."""
    return text.isascii() and text.isdigit()


def practice_search(*, text: str) -> list[Practice]:
    """Return up to PRACTICE_SEARCH_LIMIT practices whose name contains `text` (any case)
    or whose Group ID starts with it, by name: what a practice box suggests as one types."""
    text = text.strip()
    if not text:
        return []
    matches = Q(name__icontains=text)
    if is_group_id(text):
        matches |= Q(group_id__startswith=text)
    return list(
        Practice.objects.filter(matches).order_by("name", "group_id")[:PRACTICE_SEARCH_LIMIT]
    )
