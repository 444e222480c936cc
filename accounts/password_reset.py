"""Self-service password reset: the limits on requests, their audit, and the new password.

The pages are Django's own password reset views (accounts/views/password_reset.py);
everything they change goes through the functions here, each in one transaction
with its audit event.

Requests. `password_reset_request` first checks two limits, counted on
`PasswordResetRequest` rows over the last PASSWORD_RESET_LIMIT_WINDOW seconds:
PASSWORD_RESET_LIMIT_PER_ADDRESS requests for one typed address (3: nobody's
mailbox is flooded with links) and PASSWORD_RESET_LIMIT_PER_CLIENT requests from
one client (20: one machine cannot spray addresses; an IPv6 client counts by
its /64, which one machine can fill with addresses). Both count whether or not
an account uses the address, so being refused says nothing about accounts.
django-axes is not used for this: its records count sign-in failures, and a
reset request is not one; counting it there would let anyone lock an account's
sign-in by asking for links. Then Django's form emails a link to each active
account with a password that uses the address (several practices may share
one), through the outbox: the mail leaves after this transaction commits.

The answer is the same page whatever the address, and the work behind it is
nearly the same: for an address no account uses, the form composes the same
mail for a stand-in account and drops it (accounts/forms.py); what remains is
the outbox row, one insert. The per-address limit also caps how often anyone
can time one address.

Audit. One event per account mailed; for an address no account uses, one event
that says so without the address: the Details never carry a typed address, and
the event's data keeps only its keyed digest (`ehr.crypto.keyed_digests`, the
same digest the limit counts), so a reader of the log, the SIEM or an export
can see that one unknown address was tried many times, but cannot read it or
test a guess without the field-encryption key. Tokens are never recorded.

The new password. `password_reset_complete` sets it (the form applied the
password validators), ends every session of the account and records the reset.
It does not sign the person in: the next sign-in asks for the password and,
where the account has one, the second factor. A reset proves control of the
mailbox, not of the second factor nor of the account's sign-in, so a sign-in
lock (django-axes) stands after a reset until it runs out (LOGIN_COOLOFF_MINUTES)
or a practice admin lifts it; otherwise whoever holds the mailbox could undo
every lock, and a password guesser would get fresh tries each time.
"""

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.auth_events import sessions_end_all
from accounts.models import PasswordResetRequest, User, UserSession
from audit import kinds
from audit.services import audit_event_record
from ehr import crypto

ADDRESS_PURPOSE = "accounts.password_reset.address"  # keyed digests of typed addresses


class Link(models.TextChoices):
    """The emailed links that set a password (one view, accounts/views/password_reset.py)."""

    RESET = "reset", "Password reset"
    INVITATION = "invitation", "Account invitation"


def address_digests(email: str) -> list[str]:
    """Return the keyed digests of a typed address, current key first (case does not count)."""
    return crypto.keyed_digests(email.strip().casefold(), purpose=ADDRESS_PURPOSE)


def client_network(ip: str | None) -> str:
    """Return what the per-client limit counts by: an IPv4 address, or an IPv6 /64."""
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class ResetRequest:
    accepted: bool
    retry_after: int = 0  # refused: seconds until a request would be let through


def _seconds_until_under(rows: QuerySet, limit: int, now, window: timedelta) -> int:
    """Return how long until fewer than `limit` of `rows` are in the window (0: already)."""
    if limit <= 0:
        return 0  # this limit is off
    times = list(rows.order_by("-requested_at").values_list("requested_at", flat=True)[:limit])
    if len(times) < limit:
        return 0
    return max(1, math.ceil((times[-1] + window - now).total_seconds()))


@transaction.atomic
def password_reset_request(
    *, email: str, ip: str | None, send_links: Callable[[], list[User]]
) -> ResetRequest:
    """Let a reset request through the limits, have `send_links` email the links, record it.

    `send_links` is the reset form's save: it queues a link for each active
    account with a password using `email` and returns those accounts. The
    requester is anonymous: no acting user.
    """
    now = timezone.now()
    window = timedelta(seconds=getattr(settings, "PASSWORD_RESET_LIMIT_WINDOW", 3600))
    PasswordResetRequest.objects.filter(requested_at__lt=now - window).delete()
    recent = PasswordResetRequest.objects.filter(requested_at__gte=now - window)
    digests = address_digests(email)
    client = client_network(ip)
    limits = (
        (
            recent.filter(address_digest__in=digests),
            getattr(settings, "PASSWORD_RESET_LIMIT_PER_ADDRESS", 3),
            "for one email address",
        ),
        (
            recent.filter(client=client),
            getattr(settings, "PASSWORD_RESET_LIMIT_PER_CLIENT", 20),
            "from one client",
        ),
    )
    for rows, limit, words in limits:
        wait = _seconds_until_under(rows, limit, now, window)
        if wait:
            audit_event_record(
                kind=kinds.PASSWORD_RESET_REFUSED_LIMIT,
                acting_user=None,
                ip=ip,
                params={"limit": words},
                data={"address": digests[0]},
            )
            return ResetRequest(accepted=False, retry_after=wait)
    PasswordResetRequest.objects.create(address_digest=digests[0], client=client, requested_at=now)
    mailed = send_links()
    for account in mailed:
        audit_event_record(
            kind=kinds.PASSWORD_RESET_REQUESTED, acting_user=None, account=account, ip=ip
        )
    if not mailed:
        audit_event_record(
            kind=kinds.PASSWORD_RESET_REFUSED_UNKNOWN,
            acting_user=None,
            ip=ip,
            data={"address": digests[0]},
        )
    return ResetRequest(accepted=True)


@transaction.atomic
def password_reset_complete(*, account: User, new_password: str, ip: str | None) -> int:
    """Set the password chosen from a reset link and end every session of the account.

    Return how many sessions ended. Nobody is signed in, and a sign-in lock stands.
    """
    account.set_password(new_password)
    account.save(update_fields=["password"])
    ended = sessions_end_all(
        account=account,
        acting_user=account,
        ip=ip,
        reason=UserSession.EndReason.PASSWORD_CHANGED,
    )
    audit_event_record(
        kind=kinds.PASSWORD_RESET,
        acting_user=account,
        account=account,
        ip=ip,
        data={"sessions_ended": ended},
    )
    return ended


def password_link_refused(*, link: Link, account: User | None, ip: str | None) -> None:
    """Record an emailed link that did not open: not valid, already used or expired.

    `account` is the active account the link's uid names, if any (never the token).
    """
    kind = kinds.PASSWORD_LINK_REFUSED if account else kinds.PASSWORD_LINK_REFUSED_UNKNOWN
    audit_event_record(
        kind=kind, acting_user=None, account=account, ip=ip, params={"link": link.label}
    )
