"""Deliver the outbox: at least once, in order per destination, with back-off.

A pass takes each destination that is due and not taken (its row locked with
SKIP LOCKED on PostgreSQL, then a lease written, in one short transaction), sends
its oldest items outside any transaction, and then, in another short one,
deletes what was delivered and records the outcome. Nothing is held open while
the network is slow; a worker killed mid-batch leaves its items in place and its
lease runs out, so the next worker sends them again (at least once).

A live worker never outlasts its lease, or a second worker could take the
destination and send the same items at the same time. A mail takes several
exchanges with the server, each bounded by EMAIL_TIMEOUT, so a slow server can
hold one mail for a good part of a minute: the worker renews its lease before
every mail (and stops if another worker holds it by then), and the lease is
longer than a mail can take (`MAIL_EXCHANGES` x EMAIL_TIMEOUT, checked at
start-up). It starts no new item once half the lease it began with has passed;
what is left waits for the next pass. The outcome is recorded against the
destination only by the worker that still holds the lease.

A mail the server refuses for good (a 5xx answer to its recipients or to its
content) is set aside like one that cannot be opened, so the mails behind it
still go; a temporary refusal (4xx) or a server that does not answer is retried
with back-off. Errors kept on the destination never quote the server's answer,
which may name the recipient.
"""

import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
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


# The exchanges one mail can take with the server, each bounded by EMAIL_TIMEOUT: connect,
# EHLO, STARTTLS, EHLO again, AUTH, MAIL, RCPT, DATA, the message, QUIT.
MAIL_EXCHANGES = 10


@dataclass
class Sent:
    delivered: int
    error: str | None = None
    dead: bool = False  # the item after the delivered ones can never be sent


@dataclass
class Lease:
    """A worker's hold on one destination: `until` is the `leased_until` it wrote last."""

    destination_id: int
    until: datetime
    deadline: float  # `time.monotonic()` after which no new item starts: half the lease

    def renew(self) -> bool:
        """Hold the destination for a whole lease more; False if another worker holds it."""
        until = timezone.now() + timedelta(seconds=lease_seconds())
        renewed = Destination.objects.filter(
            pk=self.destination_id, leased_until=self.until
        ).update(leased_until=until)
        if renewed:
            self.until = until
        return bool(renewed)


def _permanent(error: smtplib.SMTPException) -> str | None:
    """Say why the server will never take this mail, or None if trying again may work.

    Only the answer's code: its text may quote the recipient's address.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):  # every recipient refused
        codes = sorted({code for code, _text in error.recipients.values()})
        if codes and all(code >= 500 for code in codes):
            return f"the mail server refused its recipients ({', '.join(map(str, codes))})"
    elif isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500:
        return f"the mail server refused its content ({error.smtp_code})"
    return None


def _failure(error: Exception) -> str:
    """A failed attempt in words that never quote the server's answer."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _text in error.recipients.values()})
        return f"SMTPRecipientsRefused: {', '.join(map(str, codes))}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__}: {error.smtp_code}"
    return f"{type(error).__name__}: {error}"


def send_mail_items(items: list[OutboxItem], lease: Lease) -> Sent:
    """Send mails one by one over one connection; stop at the first failure, at the
    deadline, or when the lease is no longer this worker's."""
    delivered = 0
    try:
        with mail.get_connection() as connection:
            for item in items:
                if delivered and time.monotonic() >= lease.deadline:
                    break  # the rest go in the next pass, under a new lease
                if not lease.renew():
                    break  # another worker holds the destination now: it sends the rest
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
                try:
                    message.send()
                except smtplib.SMTPException as error:
                    reason = _permanent(error)
                    if reason is None:
                        raise
                    return Sent(delivered, f"item {item.pk} cannot be sent: {reason}", dead=True)
                delivered += 1
    except Exception as error:  # any other failure of the mail server is a failed attempt
        return Sent(delivered, _failure(error))
    return Sent(delivered)


SENDERS: dict[str, Callable[[list[OutboxItem], Lease], Sent]] = {
    Destination.Kind.MAIL: send_mail_items,
}


def _due(now: datetime) -> Q:
    return (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)) & (
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    )


def _take(destination_id: int, now: datetime) -> Lease | None:
    """Lease the destination if it is due and no other worker has it."""
    until = now + timedelta(seconds=lease_seconds())
    with transaction.atomic():
        taken = (
            Destination.objects.select_for_update(skip_locked=True)
            .filter(_due(now), pk=destination_id)
            .values_list("pk", flat=True)
            .first()
        )
        if taken is None:
            return None
        if not Destination.objects.filter(_due(now), pk=destination_id).update(leased_until=until):
            return None
    return Lease(destination_id, until, time.monotonic() + lease_seconds() / 2)


def deliver_destination(destination: Destination, *, now: datetime | None = None) -> Sent | None:
    """Deliver one batch for the destination if it is due; None if it was not."""
    now = now or timezone.now()
    lease = _take(destination.pk, now)
    if lease is None:
        return None
    items: list[OutboxItem] = []
    if destination.kind == Destination.Kind.SYSLOG:
        streamed = audit_stream.send_behind(destination, lease.deadline)
        sent = Sent(streamed.delivered, streamed.error)
    else:
        pending = OutboxItem.objects.filter(destination=destination, dead_at__isnull=True)
        items = list(pending.order_by("id")[:BATCH])
        sent = SENDERS[destination.kind](items, lease) if items else Sent(0)
    _record(destination, items, sent, lease)
    return sent


def _record(destination: Destination, items: list[OutboxItem], sent: Sent, lease: Lease) -> None:
    """Delete what was delivered and keep the outcome on the destination; end the lease.

    A worker whose lease another took over only deletes what it delivered: the
    destination's state is the other worker's to record.
    """
    done = timezone.now()
    with transaction.atomic():
        OutboxItem.objects.filter(pk__in=[item.pk for item in items[: sent.delivered]]).delete()
        row = Destination.objects.select_for_update().get(pk=destination.pk)
        row.delivered += sent.delivered
        if sent.delivered:
            row.last_delivered_at = done
        if row.leased_until != lease.until:
            logger.warning("outbox %s: the lease passed to another worker", row.name)
            row.save(update_fields=["delivered", "last_delivered_at"])
            return
        row.leased_until = None
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


@dataclass
class Pass:
    """What one pass over the outbox did."""

    delivered: int = 0
    # Each destination tried: None if its batch went, else why it did not and is to be
    # tried again; and each item set aside, as (destination, why). Never quoting the
    # server's answer.
    outcomes: dict[str, str | None] = field(default_factory=dict)
    set_aside: list[tuple[str, str]] = field(default_factory=list)


def deliver_pending(*, now: datetime | None = None) -> int:
    """One pass over every destination with something to send; return how many went."""
    return deliver_pass(now=now).delivered


def deliver_pass(*, now: datetime | None = None) -> Pass:
    """One pass over every destination with something to send, and how each one went."""
    done = Pass()
    for destination in _pending():
        sent = deliver_destination(destination, now=now)
        if sent is None:
            continue
        done.delivered += sent.delivered
        if sent.dead:
            done.set_aside.append((destination.name, sent.error))
        else:
            done.outcomes[destination.name] = sent.error
    return done


def _pending() -> list[Destination]:
    """Destinations with something to send: those with items not set aside, and syslog
    destinations behind the log (the one configured, and one left from before, which
    fails as no longer configured until `outbox_retire` forgets it).

    A destination with nothing to send is not taken: an idle worker writes nothing.
    """
    audit_stream.ensure_destination()
    live = OutboxItem.objects.filter(destination=OuterRef("pk"), dead_at__isnull=True)
    found = list(Destination.objects.filter(Exists(live)).order_by("pk"))
    for destination in Destination.objects.filter(kind=Destination.Kind.SYSLOG).order_by("pk"):
        if audit_stream.chains_behind(destination).exists():
            found.append(destination)
    return found
