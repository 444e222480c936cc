"""Deliver the outbox: at least once, in order per destination, with back-off.

A pass takes each destination that is due and not taken (its row locked with
SKIP LOCKED on PostgreSQL, then a lease written, in one short transaction), sends
its oldest items outside any transaction, and then, in another short one,
deletes what was delivered and records the outcome. Nothing is held open while
the network is slow; a worker killed mid-batch leaves its items in place and its
lease runs out, so the next worker sends them again (at least once).

A live worker never outlasts its lease, or a second worker could take the
destination and send the same items at the same time: it starts no new item
once half the lease has passed, and each exchange with the server has a
timeout (EMAIL_TIMEOUT; the syslog sender's), so the item in flight ends well
before the lease does. What is left waits for the next pass.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ehr.crypto import DecryptionError
from outbox import audit_stream
from outbox.models import Destination, OutboxItem
from outbox.services import unseal

logger = logging.getLogger(__name__)

BATCH = 50


def lease_seconds() -> int:
    return getattr(settings, "OUTBOX_LEASE_SECONDS", 120)


def backoff(failures: int) -> timedelta:
    """Exponential back-off: base, 2x base, 4x base ... capped."""
    base = getattr(settings, "OUTBOX_RETRY_BASE_SECONDS", 5)
    cap = getattr(settings, "OUTBOX_RETRY_MAX_SECONDS", 3600)
    return timedelta(seconds=min(cap, base * 2 ** max(0, failures - 1)))


ERROR_LENGTH = Destination._meta.get_field("last_error").max_length  # what the row keeps


@dataclass
class Sent:
    delivered: int
    error: str | None = None
    dead: bool = False  # the item after the delivered ones can never be sent


def sending_deadline() -> float:
    """The `time.monotonic()` after which a worker starts no new item: half its lease."""
    return time.monotonic() + lease_seconds() / 2


def send_mail_items(items: list[OutboxItem], deadline: float) -> Sent:
    """Send mails one by one over one connection; stop at the first failure or the deadline."""
    delivered = 0
    try:
        with mail.get_connection() as connection:
            for item in items:
                if delivered and time.monotonic() >= deadline:
                    break  # the rest go in the next pass, under a new lease
                try:
                    data = unseal(item)
                except DecryptionError as error:
                    return Sent(delivered, f"item {item.pk} does not open: {error}", dead=True)
                message = mail.EmailMessage(
                    subject=data["subject"],
                    body=data["body"],
                    from_email=data["from"],
                    to=data["to"],
                    connection=connection,
                )
                try:
                    message.message()  # the headers are checked as the message is built
                except ValueError:  # BadHeaderError: a line break in the subject
                    # Not the error's text: it quotes the subject, which names people.
                    reason = "its headers are not valid (a line break in the subject?)"
                    return Sent(delivered, f"item {item.pk} cannot be sent: {reason}", dead=True)
                message.send()
                delivered += 1
    except Exception as error:  # any failure of the mail server is a failed attempt
        return Sent(delivered, f"{type(error).__name__}: {error}")
    return Sent(delivered)


SENDERS: dict[str, Callable[[list[OutboxItem], float], Sent]] = {
    Destination.Kind.MAIL: send_mail_items,
}


def _due(now: datetime) -> Q:
    return (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)) & (
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    )


def _take(destination_id: int, now: datetime) -> bool:
    """Lease the destination if it is due and no other worker has it."""
    with transaction.atomic():
        taken = (
            Destination.objects.select_for_update(skip_locked=True)
            .filter(_due(now), pk=destination_id)
            .values_list("pk", flat=True)
            .first()
        )
        if taken is None:
            return False
        return bool(
            Destination.objects.filter(_due(now), pk=destination_id).update(
                leased_until=now + timedelta(seconds=lease_seconds())
            )
        )


def deliver_destination(destination: Destination, *, now: datetime | None = None) -> int:
    """Deliver one batch for the destination if it is due; return how many went."""
    now = now or timezone.now()
    if not _take(destination.pk, now):
        return 0
    deadline = sending_deadline()
    items: list[OutboxItem] = []
    if destination.kind == Destination.Kind.SYSLOG:
        streamed = audit_stream.send_behind(destination, deadline)
        sent = Sent(streamed.delivered, streamed.error)
    else:
        pending = OutboxItem.objects.filter(destination=destination, dead_at__isnull=True)
        items = list(pending.order_by("id")[:BATCH])
        sent = SENDERS[destination.kind](items, deadline) if items else Sent(0)
    _record(destination, items, sent)
    return sent.delivered


def _record(destination: Destination, items: list[OutboxItem], sent: Sent) -> None:
    """Delete what was delivered and keep the outcome on the destination; end the lease."""
    done = timezone.now()
    with transaction.atomic():
        OutboxItem.objects.filter(pk__in=[item.pk for item in items[: sent.delivered]]).delete()
        row = Destination.objects.select_for_update().get(pk=destination.pk)
        row.leased_until = None
        row.delivered += sent.delivered
        if sent.delivered:
            row.last_delivered_at = done
        if sent.error is None:
            row.failures, row.next_attempt_at = 0, None
        elif sent.dead:
            # Set aside, so it does not hold up the rest; the error stays visible.
            OutboxItem.objects.filter(pk=items[sent.delivered].pk).update(dead_at=done)
            row.last_error, row.last_error_at = sent.error[:ERROR_LENGTH], done
            logger.error("outbox %s: %s; set aside", row.name, sent.error)
        else:
            row.failures += 1
            row.next_attempt_at = done + backoff(row.failures)
            row.last_error, row.last_error_at = sent.error[:ERROR_LENGTH], done
            if items:
                failed = items[sent.delivered]
                OutboxItem.objects.filter(pk=failed.pk).update(attempts=failed.attempts + 1)
            logger.warning(
                "outbox %s: delivery failed (%s in a row), next try at %s: %s",
                row.name,
                row.failures,
                row.next_attempt_at,
                sent.error,
            )
        row.save()


def deliver_pending(*, now: datetime | None = None) -> int:
    """One pass over every destination with something to send; return how many went."""
    delivered = 0
    streamed = audit_stream.ensure_destination()
    pending = list(Destination.objects.filter(items__dead_at__isnull=True).distinct())
    if streamed is not None and audit_stream.chains_behind(streamed).exists():
        pending.append(streamed)
    for destination in pending:
        delivered += deliver_destination(destination, now=now)
    return delivered
